/* claims.h - the one way a request handler takes a lease for an open.
 *
 * An open or create of a postoffice file may need a lease. The policy
 * (policy.h) decides which, who waits and what a refusal answers; this
 * module carries the decision out, so a handler only does:
 *
 *   claim_begin()    plan, identify the caller, ask for the lease: go ahead
 *                    now, refuse now, or wait (ready() says later)
 *   claim_confirm()  after the backing open: the hold still stands (an
 *                    operator's break or the caller's death may have ended
 *                    it meanwhile); a -V20 lock file's hold is handed to
 *                    the lock-file registry, where it lasts until unlink
 *   claim_cancel()   the open failed or could not be answered
 *   claim_release()  the handle that carried the claim is released
 *   claim_interrupt() the waiting client gave up
 *
 * Every result is already the errno the caller's layer must get
 * (policy_refusal_errno(): ETXTBSY for smbd, EAGAIN for wineserver, EBUSY
 * otherwise; EINTR for a waiter that died or a daemon that stops), after
 * the wait the policy allows that layer (policy_lease_wait()).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mailbags.h"

typedef struct Claim Claim;

/* A queued claim is settled: 0 (go ahead, then confirm) or the caller's
 * -errno (the claim is then already freed). Runs on whichever thread
 * settled the wait, never inside claim_begin(). */
typedef void (*ClaimReadyFn)(void *opaque, Claim *claim, int result);

typedef struct {
        const char *relpath; /* the file, relative to the backing root */
        int flags;           /* the open's flags */
        bool creating;       /* a create (or a truncating open of a lock file) */
        pid_t thread_id;     /* FUSE's caller: a thread id */
        ClaimReadyFn ready;  /* required: a claim may have to wait */
        void *opaque;
} ClaimRequest;

#define CLAIM_PENDING 1

/* A wait that holds nothing itself is over: 0 (go ahead) or -EINTR (the
 * waiter gave up or died, or the daemon stops). Runs on whichever thread
 * settled it, never inside the call that began it. */
typedef void (*ClaimWaitFn)(void *opaque, int result);

/* Returns 0 (go ahead; *@claim is NULL when there is nothing to hold),
 * CLAIM_PENDING (*@claim set, *@wait_id for claim_interrupt(); ready() will
 * settle it) or the caller's -errno (refused; nothing to free). */
int claim_begin(Mailbags *mailbags, const ClaimRequest *req, Claim **claim, uint64_t *wait_id);

/* After the backing open succeeded: 0, and *@claim is left for the handle
 * to release (an open-handle lease) or set to NULL (a lock file's hold,
 * now the registry's; @parent_node is its folder's node id, 0 if unknown);
 * or the caller's -errno when the hold ended meanwhile: the open must be
 * undone, and the claim is freed. @fd is the open file (its identity is
 * what a stale lock file's removal checks); NULL is fine: nothing to
 * confirm. */
int claim_confirm(Mailbags *mailbags, Claim **claim, uint64_t parent_node, int fd);

/* How @claim came to be held, for the trail: "overlapped" (observe mode:
 * answered at once, its lease follows in its turn), "deferred" (a create
 * answered before its lease), "waited" (@waited: granted after a wait),
 * "granted". */
const char *claim_outcome(const Claim *claim, bool waited);

/* Whether @claim is a create's, answered before its lease came. */
bool claim_is_deferred(const Claim *claim);

/* The protocol of @claim's lease ("0LK", "queue-read"...). */
const char *claim_protocol(const Claim *claim);

/* The process that made @claim's open, as identified for its lease; NULL
 * when it was not identified. */
const Caller *claim_caller(const Claim *claim);

/* Gives the lease back and frees the claim; NULL is a no-op. */
void claim_cancel(Mailbags *mailbags, Claim *claim);
void claim_release(Mailbags *mailbags, Claim *claim);

/* The handle carrying @claim is being closed by thread @thread_id (a
 * FLUSH, which close() waits for; its RELEASE comes only after close()
 * returned). If that is the claim's own process, opens made from now on
 * wait for the release instead of being refused, even by smbd and
 * wineserver: only the opener's close counts, as a Wine program's copy of
 * wineserver's descriptor is closed first. NULL is a no-op. */
void claim_closing(Mailbags *mailbags, Claim *claim, pid_t thread_id);

/* Withdraws the waiting claim @wait_id; its ready() gets -EINTR unless it
 * was settled already. */
void claim_interrupt(Mailbags *mailbags, uint64_t wait_id);

/* The process behind thread @thread_id, when it has a create answered
 * before its lease came (a deferred claim, the one just made included)
 * still waiting: a file it creates meanwhile is made at once, but is its
 * own only once that lease comes, so its reads and writes wait for it
 * (claim_await_deferred). 0 otherwise, at no cost while no claim is
 * deferred. */
pid_t claim_deferred_process(Mailbags *mailbags, pid_t thread_id);

/* A read or write (@what, of @relpath or NULL, for the log) of a file process @pid
 * created while its claim was deferred (claim_deferred_process): 0 (that
 * lease came; nothing need be asked again) or CLAIM_PENDING (@done
 * follows; *@wait_id for claim_interrupt()). */
int claim_await_deferred(Mailbags *mailbags, pid_t pid, const char *what, const char *relpath,
                         ClaimWaitFn done, void *opaque, uint64_t *wait_id);

/* Whether an open of @relpath with @flags would need a claim: 1 or 0, or
 * -errno when its postoffice cannot be protected. Identifies nobody. */
int claim_needed(Mailbags *mailbags, const char *relpath, int flags);

/* Whether a request @op ("rename", "link", "mkdir"...) other than a create
 * may make the name @relpath: 0, or -EACCES (logged) when it names a Mail
 * 2.x lock file (policy_name_refusal() says why). */
int claim_name_may_be_made(Mailbags *mailbags, const char *relpath, const char *op);
