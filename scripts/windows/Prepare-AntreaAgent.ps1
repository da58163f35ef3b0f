<#
.SYNOPSIS
Prepares a Windows Node for antrea-agent at every boot: cleans a stale Antrea network and starts
the OVS services.

.DESCRIPTION
HNS networks do not survive a reboot, but the OVS bridge does. When the HNS network is missing or
its Open vSwitch Extension is disabled, this runs Clean-AntreaNetwork.ps1 so antrea-agent can
create everything again; then it makes sure ovsdb-server and ovs-vswitchd run (when OVS is
installed as services). Idempotent: on a healthy Node it changes nothing. Register it to run at
start-up (a scheduled task) or before the agent service starts.

.PARAMETER InstallPath
Where the antrea-ts scripts are (Clean-AntreaNetwork.ps1 is looked up there).

.PARAMETER OVSInstallDir
Where OVS is installed.

.PARAMETER OVSRunMode
'service' when OVS runs as Windows services (Install-OVS.ps1 -InstallUserspace $true),
'container' when the antrea-ovs container of antrea-windows.yml runs it.

.PARAMETER NetworkName
The HNS network antrea-agent creates.

.EXAMPLE
.\Prepare-AntreaAgent.ps1 -InstallPath C:\k\antrea
#>
[CmdletBinding()]
param (
    [ValidateScript({ Test-Path -LiteralPath $_ -PathType Container })]
    [string] $InstallPath = 'C:\k\antrea',

    [ValidateScript({ [System.IO.Path]::IsPathRooted($_) })]
    [string] $OVSInstallDir = 'C:\openvswitch',

    [ValidateSet('service', 'container')]
    [string] $OVSRunMode = 'service',

    [ValidateNotNullOrEmpty()]
    [string] $NetworkName = 'antrea-hnsnetwork'
)

$ErrorActionPreference = 'Stop'
$ovsExtension = '583CC151-73EC-4A6A-8B47-578297AD7623'

$network = Get-HnsNetwork | Where-Object Name -EQ $NetworkName
$healthy = $false
if ($network) {
    $ext = @($network.Extensions) | Where-Object { $_.Id -eq $ovsExtension }
    $healthy = [bool]($ext -and $ext.IsEnabled)
}
if (-not $healthy) {
    Write-Host "[Prepare-AntreaAgent] HNS network $NetworkName is missing or its OVS extension is off: cleaning up"
    $clean = Join-Path $PSScriptRoot 'Clean-AntreaNetwork.ps1'
    if (-not (Test-Path -LiteralPath $clean)) { $clean = Join-Path $InstallPath 'Clean-AntreaNetwork.ps1' }
    & $clean -OVSInstallDir $OVSInstallDir -NetworkName $NetworkName -RemoveOVS ($OVSRunMode -eq 'container')
}

if ($OVSRunMode -eq 'service') {
    foreach ($svc in 'ovsdb-server', 'ovs-vswitchd') {
        $s = Get-Service -Name $svc -ErrorAction SilentlyContinue
        if (-not $s) { throw "service $svc is not installed (run Install-OVS.ps1 -InstallUserspace `$true)" }
        if ($s.Status -ne 'Running') { Start-Service -Name $svc }
    }
}
Write-Host '[Prepare-AntreaAgent] done'
