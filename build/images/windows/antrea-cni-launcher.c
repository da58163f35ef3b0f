/*
 * antrea.exe: the antrea CNI plugin executable on Windows Nodes.
 *
 * containerd (libcni) runs `antrea.exe` from the CNI bin directory with the CNI environment and the
 * network configuration on stdin. The plugin itself is src/cmd/antrea-cni.ts run by Node, so this
 * launcher only starts `node.exe <entry>` with everything passed through: the same stdin, stdout and
 * stderr handles, the environment (plus defaults from its configuration file), the arguments, and
 * the exit code. The child runs in a job object that kills it if the launcher is killed (a runtime
 * timing the plugin out), so no orphaned Node process is left behind.
 *
 * Configuration: `<exe path without .exe>.launcher` next to the executable (antrea.launcher),
 * written by `install-cni --os windows`; UTF-8 lines, `#` comments, CRLF or LF:
 *   node=C:\antrea\node\node.exe
 *   entry=C:\antrea\app\src\cmd\antrea-cni.ts
 *   env=ANTREA_CNI_SOCKET=\\.\pipe\antrea-cni      (set only when the variable is not set)
 *
 * Any failure of the launcher itself is reported as a CNI error object on stdout, exit code 1.
 * Build: x86_64-w64-mingw32-gcc -O2 -municode -o antrea.exe antrea-cni-launcher.c
 */
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#define MAX_LINE 4096
#define MAX_CMD 32768

static void write_utf8(HANDLE h, const wchar_t *s) {
  int n = WideCharToMultiByte(CP_UTF8, 0, s, -1, NULL, 0, NULL, NULL);
  if (n <= 1) return;
  char *buf = (char *)malloc((size_t)n);
  if (buf == NULL) return;
  WideCharToMultiByte(CP_UTF8, 0, s, -1, buf, n, NULL, NULL);
  DWORD written;
  WriteFile(h, buf, (DWORD)(n - 1), &written, NULL);
  free(buf);
}

/* Writes a CNI error (code 999, "try again" is the runtime's call) and exits 1. */
static void fail(const wchar_t *what, const wchar_t *detail) {
  wchar_t msg[2 * MAX_LINE];
  wchar_t esc[4 * MAX_LINE];
  DWORD err = GetLastError();
  _snwprintf(msg, sizeof msg / sizeof msg[0] - 1, L"antrea launcher: %ls%ls%ls (error %lu)", what,
             detail == NULL ? L"" : L": ", detail == NULL ? L"" : detail, (unsigned long)err);
  msg[sizeof msg / sizeof msg[0] - 1] = L'\0';
  size_t j = 0;
  for (size_t i = 0; msg[i] != L'\0' && j + 7 < sizeof esc / sizeof esc[0]; i++) {
    wchar_t c = msg[i];
    if (c == L'"' || c == L'\\') {
      esc[j++] = L'\\';
      esc[j++] = c;
    } else if (c < 0x20) {
      j += (size_t)_snwprintf(esc + j, 7, L"\\u%04x", (unsigned)c);
    } else {
      esc[j++] = c;
    }
  }
  esc[j] = L'\0';
  wchar_t out[4 * MAX_LINE + 64];
  _snwprintf(out, sizeof out / sizeof out[0] - 1, L"{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"%ls\"}\n", esc);
  out[sizeof out / sizeof out[0] - 1] = L'\0';
  write_utf8(GetStdHandle(STD_OUTPUT_HANDLE), out);
  ExitProcess(1);
}

/* Appends `arg` to `cmd` quoted so CommandLineToArgvW (and Node) read it back unchanged. */
static void append_arg(wchar_t *cmd, size_t cap, const wchar_t *arg) {
  size_t len = wcslen(cmd);
  if (len > 0 && len + 1 < cap) cmd[len++] = L' ';
  if (len + 1 >= cap) fail(L"command line too long", NULL);
  cmd[len++] = L'"';
  for (const wchar_t *p = arg;; p++) {
    size_t backslashes = 0;
    while (*p == L'\\') {
      backslashes++;
      p++;
    }
    /* Backslashes before a quote or the closing quote are doubled; elsewhere they are literal. */
    size_t n = (*p == L'\0' || *p == L'"') ? backslashes * 2 : backslashes;
    if (len + n + 3 >= cap) fail(L"command line too long", NULL);
    for (size_t i = 0; i < n; i++) cmd[len++] = L'\\';
    if (*p == L'\0') break;
    if (*p == L'"') cmd[len++] = L'\\';
    cmd[len++] = *p;
  }
  cmd[len++] = L'"';
  cmd[len] = L'\0';
}

/* The part of our own command line after the program name, as the runtime wrote it. */
static const wchar_t *own_arguments(void) {
  const wchar_t *p = GetCommandLineW();
  if (*p == L'"') {
    p++;
    while (*p != L'\0' && *p != L'"') p++;
    if (*p == L'"') p++;
  } else {
    while (*p != L'\0' && *p != L' ' && *p != L'\t') p++;
  }
  while (*p == L' ' || *p == L'\t') p++;
  return p;
}

static void trim(wchar_t *s) {
  size_t n = wcslen(s);
  while (n > 0 && (s[n - 1] == L'\r' || s[n - 1] == L'\n' || s[n - 1] == L' ' || s[n - 1] == L'\t')) s[--n] = L'\0';
}

static HANDLE inheritable(DWORD which) {
  HANDLE h = GetStdHandle(which);
  if (h != NULL && h != INVALID_HANDLE_VALUE) SetHandleInformation(h, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT);
  return h;
}

int wmain(void) {
  wchar_t self[MAX_PATH * 2];
  DWORD n = GetModuleFileNameW(NULL, self, MAX_PATH * 2 - 16);
  if (n == 0 || n >= MAX_PATH * 2 - 16) fail(L"cannot find its own path", NULL);
  wchar_t conf[MAX_PATH * 2];
  wcscpy(conf, self);
  wchar_t *dot = wcsrchr(conf, L'.');
  wchar_t *slash = wcsrchr(conf, L'\\');
  if (dot != NULL && (slash == NULL || dot > slash)) *dot = L'\0';
  wcscat(conf, L".launcher");

  FILE *f = _wfopen(conf, L"rb");
  if (f == NULL) fail(L"cannot open its configuration", conf);
  static wchar_t node[MAX_LINE], entry[MAX_LINE];
  node[0] = entry[0] = L'\0';
  char raw[MAX_LINE];
  wchar_t line[MAX_LINE];
  while (fgets(raw, sizeof raw, f) != NULL) {
    if (MultiByteToWideChar(CP_UTF8, 0, raw, -1, line, MAX_LINE) == 0) fail(L"configuration is not UTF-8", conf);
    trim(line);
    wchar_t *l = line;
    if (l[0] == 0xFEFF) l++; /* a byte order mark */
    if (l[0] == L'\0' || l[0] == L'#') continue;
    if (wcsncmp(l, L"node=", 5) == 0) {
      wcscpy(node, l + 5);
    } else if (wcsncmp(l, L"entry=", 6) == 0) {
      wcscpy(entry, l + 6);
    } else if (wcsncmp(l, L"env=", 4) == 0) {
      wchar_t *name = l + 4;
      wchar_t *eq = wcschr(name, L'=');
      if (eq == NULL || eq == name) fail(L"bad env line in the configuration", l);
      *eq = L'\0';
      if (GetEnvironmentVariableW(name, NULL, 0) == 0 && !SetEnvironmentVariableW(name, eq + 1)) {
        fail(L"cannot set", name);
      }
    } else {
      fail(L"unknown line in the configuration", l);
    }
  }
  fclose(f);
  if (node[0] == L'\0' || entry[0] == L'\0') fail(L"the configuration needs node= and entry=", conf);

  static wchar_t cmd[MAX_CMD];
  cmd[0] = L'\0';
  append_arg(cmd, MAX_CMD, node);
  append_arg(cmd, MAX_CMD, entry);
  const wchar_t *rest = own_arguments();
  if (*rest != L'\0') {
    if (wcslen(cmd) + wcslen(rest) + 2 >= MAX_CMD) fail(L"command line too long", NULL);
    wcscat(cmd, L" ");
    wcscat(cmd, rest);
  }

  HANDLE job = CreateJobObjectW(NULL, NULL);
  if (job != NULL) {
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION limits;
    ZeroMemory(&limits, sizeof limits);
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    SetInformationJobObject(job, JobObjectExtendedLimitInformation, &limits, sizeof limits);
  }
  STARTUPINFOW si;
  ZeroMemory(&si, sizeof si);
  si.cb = sizeof si;
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = inheritable(STD_INPUT_HANDLE);
  si.hStdOutput = inheritable(STD_OUTPUT_HANDLE);
  si.hStdError = inheritable(STD_ERROR_HANDLE);
  PROCESS_INFORMATION pi;
  ZeroMemory(&pi, sizeof pi);
  if (!CreateProcessW(node, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED | CREATE_UNICODE_ENVIRONMENT, NULL, NULL, &si,
                      &pi)) {
    fail(L"cannot start", node);
  }
  if (job != NULL) AssignProcessToJobObject(job, pi.hProcess);
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  WaitForSingleObject(pi.hProcess, INFINITE);
  DWORD code = 1;
  if (!GetExitCodeProcess(pi.hProcess, &code)) code = 1;
  CloseHandle(pi.hProcess);
  return (int)code;
}
