<#
.SYNOPSIS
Registers antrea-agent (antrea-ts on Node.js) as the Windows service "antrea-agent", run by nssm.

.DESCRIPTION
A Node.js process cannot talk to the Service Control Manager itself and sc.exe cannot run node.exe
as a service, so nssm wraps it, as Antrea documents for its agent: the service runs
`node.exe <InstallPath>\src\cmd\antrea-agent.ts --config <ConfigPath>`, depends on ovs-vswitchd,
starts delayed-automatically, logs to -LogDir with rotation, and restarts after a failure.
Prepare-AntreaAgent.ps1 runs before each start (AppEvents Start/Pre). Idempotent: an existing
service is updated in place. Use -Uninstall to remove it.

.PARAMETER InstallPath
The antrea-ts checkout or release directory (holds src\ and node_modules\).

.PARAMETER NodePath
node.exe (Node 24); default: the one pinned in node_modules, else the one on PATH.

.PARAMETER NssmPath
nssm.exe.

.PARAMETER ConfigPath
antrea-agent.conf.

.PARAMETER LogDir
Where the agent's stdout/stderr logs go.

.PARAMETER NodeName
The Kubernetes Node name (NODE_NAME); default: the host name in lower case.

.PARAMETER Uninstall
Stop and remove the service instead.

.EXAMPLE
.\Install-AntreaAgentService.ps1 -InstallPath C:\k\antrea -NssmPath C:\k\nssm.exe

.EXAMPLE
.\Install-AntreaAgentService.ps1 -NssmPath C:\k\nssm.exe -Uninstall
#>
[CmdletBinding()]
param (
    [ValidateScript({ Test-Path -LiteralPath (Join-Path $_ 'src\cmd\antrea-agent.ts') })]
    [string] $InstallPath = 'C:\k\antrea',

    [string] $NodePath,

    [Parameter(Mandatory = $true)]
    [ValidateScript({ Test-Path -LiteralPath $_ -PathType Leaf })]
    [string] $NssmPath,

    [string] $ConfigPath = 'C:\k\antrea\etc\antrea-agent.conf',

    [ValidateScript({ [System.IO.Path]::IsPathRooted($_) })]
    [string] $LogDir = 'C:\k\antrea\logs',

    [ValidatePattern('^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')]
    [string] $NodeName = $env:COMPUTERNAME.ToLower(),

    [switch] $Uninstall
)

$ErrorActionPreference = 'Stop'
$service = 'antrea-agent'

function Invoke-Nssm {
    & $NssmPath @args | Out-Null
    if ($LASTEXITCODE -ne 0) { throw "nssm $($args -join ' ') failed with exit code $LASTEXITCODE" }
}

$existing = Get-Service -Name $service -ErrorAction SilentlyContinue
if ($Uninstall) {
    if ($existing) {
        if ($existing.Status -ne 'Stopped') { Stop-Service -Name $service -Force }
        Invoke-Nssm remove $service confirm
    }
    Write-Host "[Install-AntreaAgentService] $service removed"
    return
}

if (-not (Test-Path -LiteralPath $ConfigPath -PathType Leaf)) { throw "ConfigPath: $ConfigPath does not exist" }
if (-not $NodePath) {
    $pinned = Join-Path $InstallPath 'node_modules\node\bin\node.exe'
    $NodePath = if (Test-Path -LiteralPath $pinned) { $pinned } else { (Get-Command node.exe).Source }
}
New-Item -ItemType Directory -Force -Path $LogDir | Out-Null
$agent = Join-Path $InstallPath 'src\cmd\antrea-agent.ts'
$prepare = Join-Path $PSScriptRoot 'Prepare-AntreaAgent.ps1'

if (-not $existing) { Invoke-Nssm install $service $NodePath }
Invoke-Nssm set $service Application $NodePath
Invoke-Nssm set $service AppParameters "`"$agent`" --config `"$ConfigPath`" --node-name $NodeName --log-format json"
Invoke-Nssm set $service AppDirectory $InstallPath
Invoke-Nssm set $service AppEnvironmentExtra "NODE_NAME=$NodeName"
Invoke-Nssm set $service DependOnService ovs-vswitchd
Invoke-Nssm set $service Start SERVICE_DELAYED_AUTO_START
Invoke-Nssm set $service AppStdout (Join-Path $LogDir 'antrea-agent.log')
Invoke-Nssm set $service AppStderr (Join-Path $LogDir 'antrea-agent.log')
Invoke-Nssm set $service AppRotateFiles 1
Invoke-Nssm set $service AppRotateBytes 104857600
Invoke-Nssm set $service AppExit Default Restart
Invoke-Nssm set $service AppEvents Start/Pre "powershell.exe -NoProfile -ExecutionPolicy Bypass -File `"$prepare`" -InstallPath `"$InstallPath`""
Start-Service -Name $service
Write-Host "[Install-AntreaAgentService] $service installed and started"
