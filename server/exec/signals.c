/* Signal names without the SIG prefix, and stream names. */
#include "server/exec/exec_int.h"

#include <signal.h>
#include <strings.h>

static const struct {
  int sig;
  const char *name;
} sigs[] = {
    {SIGHUP, "HUP"},       {SIGINT, "INT"},       {SIGQUIT, "QUIT"},     {SIGILL, "ILL"},
    {SIGTRAP, "TRAP"},     {SIGABRT, "ABRT"},     {SIGBUS, "BUS"},       {SIGFPE, "FPE"},
    {SIGKILL, "KILL"},     {SIGUSR1, "USR1"},     {SIGSEGV, "SEGV"},     {SIGUSR2, "USR2"},
    {SIGPIPE, "PIPE"},     {SIGALRM, "ALRM"},     {SIGTERM, "TERM"},     {SIGSTKFLT, "STKFLT"},
    {SIGCHLD, "CHLD"},     {SIGCONT, "CONT"},     {SIGSTOP, "STOP"},     {SIGTSTP, "TSTP"},
    {SIGTTIN, "TTIN"},     {SIGTTOU, "TTOU"},     {SIGURG, "URG"},       {SIGXCPU, "XCPU"},
    {SIGXFSZ, "XFSZ"},     {SIGVTALRM, "VTALRM"}, {SIGPROF, "PROF"},     {SIGWINCH, "WINCH"},
    {SIGIO, "IO"},         {SIGPWR, "PWR"},       {SIGSYS, "SYS"},
};

const char *exec_signal_name(int sig) {
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (sigs[i].sig == sig)
      return sigs[i].name;
  return NULL;
}

int exec_signal_from_name(const char *name) {
  if (!name)
    return 0;
  if (strncasecmp(name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    if (strcasecmp(sigs[i].name, name) == 0)
      return sigs[i].sig;
  /* aliases */
  if (strcasecmp(name, "IOT") == 0)
    return SIGABRT;
  if (strcasecmp(name, "POLL") == 0)
    return SIGIO;
  if (strcasecmp(name, "CLD") == 0)
    return SIGCHLD;
  return 0;
}

const char *exec_stream_name(exec_stream s) {
  switch (s) {
  case EXEC_STREAM_STDOUT:
    return "stdout";
  case EXEC_STREAM_STDERR:
    return "stderr";
  case EXEC_STREAM_PTY:
    return "pty";
  }
  return "stdout";
}
