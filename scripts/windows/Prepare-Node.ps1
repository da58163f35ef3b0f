<#
.SYNOPSIS
Prepares a Windows Server Node to join a mixed Linux/Windows cluster with antrea-ts: checks
containerd and the Windows features, installs kubelet and kubeadm, registers kubelet as a service,
opens the firewall for kubelet, and optionally installs Open vSwitch and the antrea-agent service.

.DESCRIPTION
Idempotent: what is in place is kept. Expectations checked before anything changes:
- Windows Server 2019 (build 17763) or newer, run as Administrator;
- the Containers and Hyper-V (or Hyper-V PowerShell) features (they may need a reboot: the script
  stops and says so);
- containerd running and listening on \\.\pipe\containerd-containerd (Antrea supports containerd
  only on Windows).
Then: kubelet.exe and kubeadm.exe (version -KubernetesVersion) in -KubernetesPath, kubelet
registered with nssm (--container-runtime-endpoint=npipe:////./pipe/containerd-containerd,
--cni-bin-dir/--cni-conf-dir the antrea-ts CNI directories), the firewall rule
"kubelet" for TCP 10250, and with -InstallOVS the OVS driver and services (Install-OVS.ps1).

.PARAMETER KubernetesVersion
The kubelet/kubeadm version, e.g. v1.35.0.

.PARAMETER KubernetesPath
Where kubelet, kubeadm and their configuration live.

.PARAMETER NodeIP
The Node's IP for kubelet (--node-ip); default: the address of the default route's interface.

.PARAMETER NssmPath
nssm.exe, used to run kubelet as a service.

.PARAMETER InstallOVS
Also run Install-OVS.ps1 (driver and userspace services).

.PARAMETER DownloadBase
Where Kubernetes binaries are downloaded from.

.EXAMPLE
.\Prepare-Node.ps1 -KubernetesVersion v1.35.0 -NssmPath C:\k\nssm.exe -InstallOVS
#>
[CmdletBinding()]
param (
    [Parameter(Mandatory = $true)]
    [ValidatePattern('^v\d+\.\d+\.\d+$')]
    [string] $KubernetesVersion,

    [ValidateScript({ [System.IO.Path]::IsPathRooted($_) })]
    [string] $KubernetesPath = 'C:\k',

    [ValidateScript({ [System.Net.IPAddress]::TryParse($_, [ref]$null) })]
    [string] $NodeIP,

    [Parameter(Mandatory = $true)]
    [ValidateScript({ Test-Path -LiteralPath $_ -PathType Leaf })]
    [string] $NssmPath,

    [switch] $InstallOVS,

    [ValidatePattern('^https://')]
    [string] $DownloadBase = 'https://dl.k8s.io'
)

$ErrorActionPreference = 'Stop'
function Write-Step([string] $Message) { Write-Host "[Prepare-Node] $Message" }

# Expectations.
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) { throw 'run this script as Administrator' }
if ([Environment]::OSVersion.Version.Build -lt 17763) { throw 'Windows Server 2019 (build 17763) or newer is required' }
$needReboot = $false
foreach ($feature in 'Containers', 'Hyper-V', 'Hyper-V-PowerShell') {
    $f = Get-WindowsFeature -Name $feature -ErrorAction SilentlyContinue
    if ($f -and -not $f.Installed) {
        Write-Step "installing Windows feature $feature"
        $r = Install-WindowsFeature -Name $feature
        if ($r.RestartNeeded -eq 'Yes') { $needReboot = $true }
    }
}
if ($needReboot) { Write-Warning 'reboot and run this script again'; return }
$containerd = Get-Service -Name containerd -ErrorAction SilentlyContinue
if (-not $containerd) { throw 'containerd is not installed (antrea-ts supports containerd on Windows)' }
if ($containerd.Status -ne 'Running') { Start-Service -Name containerd }
if (-not (Test-Path -LiteralPath '\\.\pipe\containerd-containerd')) { throw 'containerd does not listen on \\.\pipe\containerd-containerd' }

# kubelet and kubeadm.
New-Item -ItemType Directory -Force -Path $KubernetesPath, 'C:\var\log\kubelet', 'C:\etc\cni\net.d', 'C:\opt\cni\bin' | Out-Null
foreach ($bin in 'kubelet', 'kubeadm') {
    $exe = Join-Path $KubernetesPath "$bin.exe"
    $have = if (Test-Path -LiteralPath $exe) { (& $exe --version) -join ' ' } else { '' }
    if ($have -notmatch [regex]::Escape($KubernetesVersion)) {
        Write-Step "downloading $bin $KubernetesVersion"
        [Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
        Invoke-WebRequest -UseBasicParsing -OutFile $exe -Uri "$DownloadBase/$KubernetesVersion/bin/windows/amd64/$bin.exe"
    }
}
if (-not $NodeIP) {
    $route = Get-NetRoute -DestinationPrefix '0.0.0.0/0' | Sort-Object RouteMetric | Select-Object -First 1
    $NodeIP = (Get-NetIPAddress -InterfaceIndex $route.InterfaceIndex -AddressFamily IPv4 | Select-Object -First 1).IPAddress
}
$kubeletArgs = @(
    "--config=$KubernetesPath\kubelet-config.yaml",
    "--bootstrap-kubeconfig=$KubernetesPath\bootstrap-kubelet.conf",
    "--kubeconfig=$KubernetesPath\kubelet.conf",
    '--container-runtime-endpoint=npipe:////./pipe/containerd-containerd',
    "--node-ip=$NodeIP",
    '--hostname-override=' + $env:COMPUTERNAME.ToLower(),
    '--cert-dir=C:\var\lib\kubelet\pki',
    '--log-dir=C:\var\log\kubelet',
    '--logtostderr=false',
    '--enable-debugging-handlers',
    '--pod-infra-container-image=registry.k8s.io/pause:3.10',
    '--resolv-conf=""'
) -join ' '
if (-not (Get-Service -Name kubelet -ErrorAction SilentlyContinue)) {
    & $NssmPath install kubelet (Join-Path $KubernetesPath 'kubelet.exe') | Out-Null
}
& $NssmPath set kubelet AppParameters $kubeletArgs | Out-Null
& $NssmPath set kubelet AppDirectory $KubernetesPath | Out-Null
& $NssmPath set kubelet DependOnService containerd | Out-Null
& $NssmPath set kubelet Start SERVICE_AUTO_START | Out-Null

# Firewall: the API server reaches kubelet on TCP 10250.
if (-not (Get-NetFirewallRule -Name kubelet -ErrorAction SilentlyContinue)) {
    New-NetFirewallRule -Name kubelet -DisplayName 'kubelet' -Enabled True -Direction Inbound -Protocol TCP -Action Allow -LocalPort 10250 | Out-Null
}

if ($InstallOVS) {
    & (Join-Path $PSScriptRoot 'Install-OVS.ps1') -InstallUserspace $true
}
Write-Step "done; join the cluster with kubeadm join (kubelet starts as a service), then deploy antrea-windows.yml"
