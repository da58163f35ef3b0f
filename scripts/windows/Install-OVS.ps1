<#
.SYNOPSIS
Installs Open vSwitch for Windows (the Hyper-V switch extension driver and, optionally, the
userspace daemons as Windows services) for antrea-ts.

.DESCRIPTION
Idempotent: every step checks first. Downloads the OVS package (or uses -LocalFile), extracts it to
-OVSInstallDir, installs the Visual C++ runtime when missing, imports the driver certificate,
installs the "Open vSwitch Extension" driver with netcfg unless it is installed, creates the OVSDB
when absent, and (with -InstallUserspace) registers ovsdb-server and ovs-vswitchd as services that
restart on failure. Run it as Administrator.

.PARAMETER DownloadURL
Where to download the OVS zip from.

.PARAMETER LocalFile
A local OVS zip to install instead of downloading.

.PARAMETER OVSInstallDir
Where OVS is installed (the agent's ovsRunDir is <dir>\var\run\openvswitch).

.PARAMETER InstallUserspace
Also register ovsdb-server and ovs-vswitchd as Windows services (not needed when the antrea-ovs
container of antrea-windows.yml runs them).

.PARAMETER ImportCertificate
Import the driver's signing certificate into the trusted stores (test-signed drivers).

.EXAMPLE
.\Install-OVS.ps1 -InstallUserspace $true

.EXAMPLE
.\Install-OVS.ps1 -LocalFile C:\k\ovs-3.0.5-antrea.1-win64.zip -InstallUserspace $false
#>
[CmdletBinding()]
param (
    [ValidatePattern('^https://')]
    [string] $DownloadURL = 'https://downloads.antrea.io/ovs/ovs-3.0.5-antrea.1-win64.zip',

    [ValidateScript({ Test-Path -LiteralPath $_ -PathType Leaf })]
    [string] $LocalFile,

    [ValidateScript({ [System.IO.Path]::IsPathRooted($_) })]
    [string] $OVSInstallDir = 'C:\openvswitch',

    [bool] $InstallUserspace = $true,

    [bool] $ImportCertificate = $true
)

$ErrorActionPreference = 'Stop'
$ovsBin = Join-Path $OVSInstallDir 'usr\bin'
$ovsSbin = Join-Path $OVSInstallDir 'usr\sbin'
$driverDir = Join-Path $OVSInstallDir 'driver'
$confDir = Join-Path $OVSInstallDir 'etc\openvswitch'
$runDir = Join-Path $OVSInstallDir 'var\run\openvswitch'
$logDir = Join-Path $OVSInstallDir 'var\log\openvswitch'
$dbPath = Join-Path $confDir 'conf.db'

function Write-Step([string] $Message) { Write-Host "[Install-OVS] $Message" }

function Get-OVSPackage {
    if (Test-Path -LiteralPath (Join-Path $ovsSbin 'ovs-vswitchd.exe')) {
        Write-Step "OVS is already extracted in $OVSInstallDir"
        return
    }
    $zip = $LocalFile
    if (-not $zip) {
        $zip = Join-Path $env:TEMP 'ovs-win64.zip'
        Write-Step "downloading $DownloadURL"
        [Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
        Invoke-WebRequest -Uri $DownloadURL -OutFile $zip -UseBasicParsing
    }
    $parent = Split-Path -Parent $OVSInstallDir
    Expand-Archive -LiteralPath $zip -DestinationPath $parent -Force
    if (-not (Test-Path -LiteralPath (Join-Path $ovsSbin 'ovs-vswitchd.exe'))) {
        throw "the OVS package did not contain usr\sbin\ovs-vswitchd.exe under $OVSInstallDir"
    }
}

function Install-VCRuntime {
    $installed = Get-ItemProperty 'HKLM:\SOFTWARE\Microsoft\VisualStudio\14.0\VC\Runtimes\x64' -ErrorAction SilentlyContinue
    if ($installed -and $installed.Installed -eq 1) { return }
    $redist = Get-ChildItem -Path $OVSInstallDir -Filter 'vc_redist*.exe' -Recurse | Select-Object -First 1
    if (-not $redist) { Write-Warning 'Visual C++ runtime missing and no vc_redist in the package'; return }
    Write-Step 'installing the Visual C++ runtime'
    Start-Process -FilePath $redist.FullName -ArgumentList '/install', '/quiet', '/norestart' -Wait -NoNewWindow
}

function Install-OVSDriver {
    $ext = Get-VMSystemSwitchExtension -Name 'Open vSwitch Extension' -ErrorAction SilentlyContinue
    if ($ext) {
        Write-Step 'the Open vSwitch Extension driver is already installed'
        return
    }
    if ($ImportCertificate) {
        $cert = Get-ChildItem -Path $driverDir -Filter '*.cer' | Select-Object -First 1
        if ($cert) {
            foreach ($store in 'Root', 'TrustedPublisher') {
                Import-Certificate -FilePath $cert.FullName -CertStoreLocation "Cert:\LocalMachine\$store" | Out-Null
            }
        }
    }
    $inf = Join-Path $driverDir 'ovsext.inf'
    if (-not (Test-Path -LiteralPath $inf)) { throw "driver INF not found: $inf" }
    Write-Step 'installing the Open vSwitch Extension driver'
    & netcfg.exe -l $inf -c s -i OVSExt
    if ($LASTEXITCODE -ne 0) { throw "netcfg failed with exit code $LASTEXITCODE" }
}

function Initialize-OVSDB {
    foreach ($d in $confDir, $runDir, $logDir) { New-Item -ItemType Directory -Force -Path $d | Out-Null }
    if (Test-Path -LiteralPath $dbPath) { return }
    Write-Step "creating $dbPath"
    & (Join-Path $ovsBin 'ovsdb-tool.exe') create $dbPath (Join-Path $OVSInstallDir 'usr\share\openvswitch\vswitch.ovsschema')
    if ($LASTEXITCODE -ne 0) { throw "ovsdb-tool create failed with exit code $LASTEXITCODE" }
}

function Install-OVSService([string] $Name, [string] $BinPath, [string] $DependsOn) {
    if (Get-Service -Name $Name -ErrorAction SilentlyContinue) {
        Write-Step "service $Name already exists"
    } else {
        $scArgs = @('create', $Name, 'binPath=', $BinPath, 'start=', 'auto')
        if ($DependsOn) { $scArgs += @('depend=', $DependsOn) }
        & sc.exe @scArgs | Out-Null
        if ($LASTEXITCODE -ne 0) { throw "sc.exe create $Name failed with exit code $LASTEXITCODE" }
        & sc.exe failure $Name reset= 0 actions= restart/0/restart/0/restart/0 | Out-Null
    }
    Start-Service -Name $Name
}

Get-OVSPackage
Install-VCRuntime
Install-OVSDriver
Initialize-OVSDB
if ($InstallUserspace) {
    $db = "unix:$runDir\db.sock"
    Install-OVSService -Name 'ovsdb-server' -BinPath "`"$ovsSbin\ovsdb-server.exe`" $dbPath -vfile:info --remote=punix:db.sock --remote=ptcp:6640:127.0.0.1 --log-file=`"$logDir\ovsdb-server.log`" --pidfile --service"
    Install-OVSService -Name 'ovs-vswitchd' -BinPath "`"$ovsSbin\ovs-vswitchd.exe`" --pidfile -vfile:info --log-file=`"$logDir\ovs-vswitchd.log`" --service" -DependsOn 'ovsdb-server'
    $driverVersion = (Get-Item (Join-Path $env:SystemRoot 'System32\drivers\OVSExt.sys') -ErrorAction SilentlyContinue).VersionInfo.ProductVersion
    if ($driverVersion) {
        & (Join-Path $ovsBin 'ovs-vsctl.exe') --db=$db --no-wait set Open_vSwitch . "ovs_version=$driverVersion"
    }
}
$env:Path = ($env:Path.Split(';') + $ovsBin | Select-Object -Unique) -join ';'
Write-Step 'done'
