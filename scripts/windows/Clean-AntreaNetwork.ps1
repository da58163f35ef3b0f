<#
.SYNOPSIS
Removes what antrea-agent set up on a Windows Node: the OVS bridge, the HNS network with its
Hyper-V switch and host vNIC, and Antrea's NetNat and firewall rules, restoring the uplink.

.DESCRIPTION
Run it when the HNS network is missing or broken (after a reboot HNS networks do not survive, which
leaves a stale bridge) or before uninstalling. Idempotent: what is absent is skipped. With
-RenewIPConfig the uplink asks DHCP for its address again.

.PARAMETER OVSInstallDir
Where OVS is installed.

.PARAMETER OVSBridge
The bridge antrea-agent created.

.PARAMETER NetworkName
The HNS network antrea-agent created.

.PARAMETER RemoveOVS
Also stop the OVS services and delete the OVSDB (a fresh conf.db is created by Install-OVS.ps1).

.PARAMETER RenewIPConfig
Run ipconfig /renew on the uplink afterwards (DHCP Nodes).

.EXAMPLE
.\Clean-AntreaNetwork.ps1

.EXAMPLE
.\Clean-AntreaNetwork.ps1 -RemoveOVS $true -RenewIPConfig $true
#>
[CmdletBinding(SupportsShouldProcess)]
param (
    [ValidateScript({ [System.IO.Path]::IsPathRooted($_) })]
    [string] $OVSInstallDir = 'C:\openvswitch',

    [ValidatePattern('^[A-Za-z0-9_.:~@-]{1,15}$')]
    [string] $OVSBridge = 'br-int',

    [ValidateNotNullOrEmpty()]
    [string] $NetworkName = 'antrea-hnsnetwork',

    [bool] $RemoveOVS = $false,

    [bool] $RenewIPConfig = $false
)

$ErrorActionPreference = 'Stop'
$ovsVsctl = Join-Path $OVSInstallDir 'usr\bin\ovs-vsctl.exe'
$ovsdbSock = Join-Path $OVSInstallDir 'var\run\openvswitch\db.sock'

function Write-Step([string] $Message) { Write-Host "[Clean-AntreaNetwork] $Message" }

# 1. The OVS bridge (its ports go with it).
if ((Test-Path -LiteralPath $ovsVsctl) -and (Get-Process -Name ovsdb-server -ErrorAction SilentlyContinue)) {
    if ($PSCmdlet.ShouldProcess($OVSBridge, 'delete OVS bridge')) {
        & $ovsVsctl "--db=unix:$ovsdbSock" --no-wait --if-exists del-br $OVSBridge
        if ($LASTEXITCODE -ne 0) { Write-Warning "ovs-vsctl del-br $OVSBridge exited with $LASTEXITCODE" }
    }
}

# 2. Antrea's NetNat and firewall rules.
Get-NetNat -ErrorAction SilentlyContinue | Where-Object Name -In @('antrea-nat', 'antrea-nat-nodeport') |
    ForEach-Object { if ($PSCmdlet.ShouldProcess($_.Name, 'remove NetNat')) { $_ | Remove-NetNat -Confirm:$false } }
Get-NetFirewallRule -Group 'Antrea' -ErrorAction SilentlyContinue |
    ForEach-Object { if ($PSCmdlet.ShouldProcess($_.Name, 'remove firewall rule')) { $_ | Remove-NetFirewallRule } }

# 3. The HNS network, its host vNIC and its switch; the uplink gets its TCP/IP binding back.
$network = Get-HnsNetwork | Where-Object Name -EQ $NetworkName
$uplink = $null
if ($network) {
    $uplink = $network.NetworkAdapterName
    if ($PSCmdlet.ShouldProcess($NetworkName, 'remove HNS network')) {
        Get-VMNetworkAdapter -ManagementOS -SwitchName $NetworkName -ErrorAction SilentlyContinue |
            Remove-VMNetworkAdapter -Confirm:$false
        $network | Remove-HnsNetwork
    }
} else {
    Write-Step "HNS network $NetworkName does not exist"
}
if (Get-VMSwitch -Name $NetworkName -ErrorAction SilentlyContinue) {
    if ($PSCmdlet.ShouldProcess($NetworkName, 'remove VM switch')) { Remove-VMSwitch -Name $NetworkName -Force }
}
if ($uplink) {
    Set-NetAdapterBinding -Name $uplink -ComponentID vms_pp -Enabled $false -ErrorAction SilentlyContinue
    Set-NetAdapterBinding -Name $uplink -ComponentID ms_tcpip -Enabled $true -ErrorAction SilentlyContinue
}

# 4. Optionally a clean OVS.
if ($RemoveOVS) {
    foreach ($svc in 'ovs-vswitchd', 'ovsdb-server') {
        if (Get-Service -Name $svc -ErrorAction SilentlyContinue) { Stop-Service -Name $svc -Force }
    }
    $db = Join-Path $OVSInstallDir 'etc\openvswitch\conf.db'
    if (Test-Path -LiteralPath $db) { Remove-Item -LiteralPath $db -Force }
    Get-ChildItem -Path (Join-Path $OVSInstallDir 'var\run\openvswitch') -Filter '*.pid' -ErrorAction SilentlyContinue |
        Remove-Item -Force
}

if ($RenewIPConfig -and $uplink) {
    & ipconfig.exe /renew $uplink | Out-Null
}
Write-Step 'done'
