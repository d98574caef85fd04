/* The environment a spawned command gets: the server's environment filtered
 * by an EnvPolicy, then the request's `env` overrides (null unsets), then the
 * sandbox's additions. */
#ifndef WARDEN_ENVPOLICY_H
#define WARDEN_ENVPOLICY_H

#include <jansson.h>

/* Build a NULL-terminated "NAME=value" array (malloc'd, free with
 * envpolicy_free). policy and env may be NULL; extra is NULL-terminated
 * or NULL. Returns NULL on ENOMEM. */
char **envpolicy_build(char **base, const json_t *policy, const json_t *env, char *const *extra);
void envpolicy_free(char **envp);

#endif
