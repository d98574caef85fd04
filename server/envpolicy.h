/* The environment a spawned command gets: the server's environment filtered
 * by an EnvPolicy (and, without an explicit `exclude`, by the default
 * secret filter), minus the variables that locate host sockets when the
 * command's network is restricted, then the request's `env` overrides (null
 * unsets), then the sandbox's additions.
 *
 * Linear in the number of variables (a hash index over names). Ownership:
 * the returned array and its strings belong to the caller
 * (envpolicy_free); `dropped` is borrowed and appended to. */
#ifndef WARDEN_ENVPOLICY_H
#define WARDEN_ENVPOLICY_H

#include <jansson.h>
#include <stdbool.h>

typedef struct envpolicy_opts {
  const json_t *policy;  /* EnvPolicy object or NULL */
  const json_t *env;     /* the request's overrides (object) or NULL */
  char *const *extra;    /* NULL-terminated "NAME=value" additions, or NULL */
  /* Network mode other than full: leave out the server's variables that
   * locate host sockets (SSH_AUTH_SOCK, DBUS_*_BUS_ADDRESS, DOCKER_HOST at
   * a unix socket, XDG_RUNTIME_DIR, DISPLAY of a local X server, ... and
   * any variable whose value names an existing socket). */
  bool drop_sockets;
  /* When non-NULL, the names the default secret filter and the socket
   * filter left out are appended (names only, server order). */
  json_t *dropped;
} envpolicy_opts;

/* Build a NULL-terminated "NAME=value" array (malloc'd, free with
 * envpolicy_free). Returns NULL on ENOMEM. */
char **envpolicy_build_ex(char **base, const envpolicy_opts *o);
/* envpolicy_build_ex without the socket filter and the dropped list. */
char **envpolicy_build(char **base, const json_t *policy, const json_t *env, char *const *extra);
void envpolicy_free(char **envp);

/* The default secret filter on one variable (exposed for tests). */
bool envpolicy_is_secret(const char *name, const char *value);
/* The socket filter on one variable (exposed for tests). */
bool envpolicy_locates_socket(const char *name, const char *value);

#endif
