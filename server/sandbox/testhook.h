/* Test-build-only hooks into the sandbox (compiled in only with the CMake
 * option WARDEN_TEST_HOOKS, which scripts/test.sh turns on; release builds
 * and the default build have none of this: every guard below is the
 * constant 0 and the compiler removes it).
 *
 * They let the tests prove each layer on its own:
 *   WARDEN_TEST_DISABLE=landlock,seccomp,caps,nnp,mounts,userns,pidns,netns,ipcns
 *     skips that layer's setup silently, as a bug would: the test suite must
 *     notice (tests/sandbox/test_layers.py).
 *   WARDEN_TEST_FEATURES=landlock=N,userns=0,netns=0,seccomp=0
 *     makes the feature probe report less than the kernel has (a Landlock
 *     ABI cap, a missing feature), so a policy becomes unenforceable and the
 *     server must refuse it (-32003), never run it weaker.
 * Both variables are read once, at startup (before any clone), into plain
 * globals: the child side only reads memory (async-signal-safe). An unknown
 * name in either variable stops the server with a message on stderr, so a
 * typo in a test cannot test nothing. */
#ifndef WARDEN_SANDBOX_TESTHOOK_H
#define WARDEN_SANDBOX_TESTHOOK_H

#include "server/policy/policy.h"

#define SBX_TEST_LANDLOCK (1u << 0)
#define SBX_TEST_SECCOMP (1u << 1)
#define SBX_TEST_CAPS (1u << 2)
#define SBX_TEST_NNP (1u << 3)
#define SBX_TEST_MOUNTS (1u << 4)
#define SBX_TEST_USERNS (1u << 5)
#define SBX_TEST_PIDNS (1u << 6)
#define SBX_TEST_NETNS (1u << 7)
#define SBX_TEST_IPCNS (1u << 8)

#ifdef WARDEN_TEST_HOOKS
extern unsigned sbx_test_disabled;
/* true when the layer `bit` is switched off by WARDEN_TEST_DISABLE */
#define sbx_test_off(bit) ((sbx_test_disabled & (bit)) != 0)
/* CLONE_NEW* flags of the namespaces switched off */
unsigned long sbx_test_clone_off(void);
/* Lower *f to what WARDEN_TEST_FEATURES says. */
void sbx_test_features(policy_features *f);
#else
#define sbx_test_off(bit) 0
#define sbx_test_clone_off() 0UL
#define sbx_test_features(f) ((void)(f))
#endif

#endif
