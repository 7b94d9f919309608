/* claims.c - an open's claim carried out: the plan and the policy's answers
 * (policy.h) applied to a lease (claims.h). */
#include "claims.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "caller.h"
#include "fd-util.h"
#include "lease.h"
#include "log.h"
#include "policy.h"

typedef enum {
        CLAIM_DEFERRED_WAITING,
        CLAIM_DEFERRED_HELD,
        CLAIM_DEFERRED_ENDED,
} ClaimDeferredState;

struct Claim {
        Postoffice *po; /* whose lease manager holds it; lives as long as the daemon */
        PolicyPlan plan;
        Caller caller;
        char *relpath;
        uint64_t ref;
        bool creating;
        int flags;
        pid_t thread_id;
        Mailbags *mailbags;
        ClaimReadyFn ready;
        void *opaque;
        /* Answered at once in observe mode while its lease is queued;
         * immutable once claim_begin returned. */
        bool overlapped;
        /* A deferred claim: a create answered before its lease came. Two
         * owners, the lease's callback and the create's handle (until it
         * is released, or until claim_confirm for a lock file whose hold
         * outlives the handle); the last one frees it. */
        bool deferred;           /* immutable once claim_begin returned */
        uint64_t wait_id;        /* immutable once claim_begin returned */
        gint owners;             /* atomic */
        GMutex deferred_mutex;   /* a leaf lock: nothing is called under it */
        ClaimDeferredState state; /* guarded by deferred_mutex */
        bool handle_gone;         /* guarded by deferred_mutex */
        bool file_known;          /* guarded by deferred_mutex */
        struct stat file;         /* guarded by deferred_mutex */
        uint64_t parent_node;     /* guarded by deferred_mutex */
};

static void claim_free(Claim *claim)
{
        if (claim->deferred)
                g_mutex_clear(&claim->deferred_mutex);
        g_free(claim->relpath);
        g_free(claim);
}

static void claim_unref(Claim *claim)
{
        if (g_atomic_int_dec_and_test(&claim->owners))
                claim_free(claim);
}

/* What the lease manager says, as the caller's layer must hear it. */
static int claim_errno(const Claim *claim, int lease_result)
{
        return policy_refusal_errno(claim->caller.program, lease_result);
}

static void claim_lease_done(void *opaque, int result)
{
        Claim *claim = opaque;
        ClaimReadyFn ready = claim->ready;
        void *ready_opaque = claim->opaque;
        if (result < 0) {
                int error = claim_errno(claim, result);
                claim_free(claim);
                ready(ready_opaque, NULL, error);
                return;
        }
        ready(ready_opaque, claim, 0);
}

/* The deferred claims still waiting, for claim_follow(). */
static void claim_deferred_track(Mailbags *mailbags, Claim *claim, bool waiting)
{
        g_mutex_lock(&mailbags->deferred_mutex);
        if (waiting)
                g_ptr_array_add(mailbags->deferred, claim);
        else
                g_ptr_array_remove_fast(mailbags->deferred, claim);
        atomic_store(&mailbags->deferred_waiting, mailbags->deferred->len);
        g_mutex_unlock(&mailbags->deferred_mutex);
}

/* The file a lock-file claim made, looked for under its name as its hold
 * goes to the registry. */
typedef struct {
        Mailbags *mailbags;
        const char *relpath;
        const struct stat *made;
} ClaimMadeFile;

static bool claim_made_file_present(void *opaque)
{
        const ClaimMadeFile *file = opaque;
        autoclose_fd int fd = backing_open_node(file->mailbags->backing, file->relpath);
        struct stat now;
        return fd >= 0 && fstat(fd, &now) == 0 && now.st_dev == file->made->st_dev &&
               now.st_ino == file->made->st_ino;
}

/* A -V20 lock file's hold goes to the lock-file registry, where it lasts
 * until the file is unlinked; @made: the file made (NULL: unknown). The
 * file may be gone by now: its program gave up before a deferred claim's
 * turn came, or another program removed it since it was made. Then its
 * hold ends here, as its removal would have ended it in the registry. */
static void claim_hand_to_registry(Mailbags *mailbags, Claim *claim, uint64_t parent_node,
                                   const struct stat *made)
{
        ClaimMadeFile file = {.mailbags = mailbags, .relpath = claim->relpath, .made = made};
        int r = mailbags_lockfile_created(mailbags, claim->po, claim->relpath, parent_node, made,
                                          &claim->plan, claim->ref, claim->caller.pid,
                                          made ? claim_made_file_present : NULL, &file);
        if (r < 0) {
                log_info("%s: its lock file went before its hold was recorded", claim->relpath);
                lease_release(claim->po->leases, claim->plan.kind, claim->plan.name, claim->ref);
        }
}

/* The lease of a deferred claim is settled. Runs on whichever thread
 * settled it (never inside claim_begin: a grant there is no deferral). */
static void claim_deferred_done(void *opaque, int result)
{
        Claim *claim = opaque;
        Mailbags *mailbags = claim->mailbags;
        claim_deferred_track(mailbags, claim, false);

        g_mutex_lock(&claim->deferred_mutex);
        bool release = false, hand_over = false;
        struct stat made = claim->file;
        uint64_t parent_node = claim->parent_node;
        if (result < 0) {
                claim->state = CLAIM_DEFERRED_ENDED;
        } else if (claim->plan.until_unlink) {
                /* A lock file: its hold is the file's, once it is known. */
                claim->state = CLAIM_DEFERRED_HELD;
                hand_over = claim->file_known;
                release = claim->handle_gone && !claim->file_known;
                if (hand_over || release)
                        claim->state = CLAIM_DEFERRED_ENDED;
        } else {
                claim->state = claim->handle_gone ? CLAIM_DEFERRED_ENDED : CLAIM_DEFERRED_HELD;
                release = claim->handle_gone;
        }
        g_mutex_unlock(&claim->deferred_mutex);

        if (hand_over)
                claim_hand_to_registry(mailbags, claim, parent_node, &made);
        if (release)
                lease_release(claim->po->leases, claim->plan.kind, claim->plan.name, claim->ref);
        if (result == 0)
                log_debug("%s: the deferred lease of pid %d came", claim->relpath,
                          (int)claim->caller.pid);
        claim_unref(claim);
}

/* The handle of a deferred claim goes (released, or its create failed). */
static void claim_deferred_drop(Mailbags *mailbags, Claim *claim)
{
        g_mutex_lock(&claim->deferred_mutex);
        claim->handle_gone = true;
        bool cancel = claim->state == CLAIM_DEFERRED_WAITING;
        /* (A lock file's claim is dropped here only before claim_confirm
         * handed its hold on: held, it is released like a handle's.) */
        bool release = claim->state == CLAIM_DEFERRED_HELD;
        if (release)
                claim->state = CLAIM_DEFERRED_ENDED;
        g_mutex_unlock(&claim->deferred_mutex);
        /* Withdrawn: claim_deferred_done() runs, now or on the thread that
         * settles it meanwhile, and sees the handle gone. */
        if (cancel)
                lease_cancel(claim->po->leases, claim->wait_id);
        if (release)
                lease_release(claim->po->leases, claim->plan.kind, claim->plan.name, claim->ref);
        claim_unref(claim);
}

/* A wait in the line of a process's deferred claim (claim_follow_start):
 * what its settling needs once the claim it followed may be gone. */
typedef struct {
        Postoffice *po; /* lives as long as the daemon */
        LeaseKind kind;
        char name[PO_NAME_MAX];
        uint64_t ref;
        ClaimWaitFn done;
        void *opaque;
} ClaimFollow;

/* Whether process @pid has a deferred claim still waiting: then its
 * postoffice, kind and mailbag are copied into @follow, and the process as
 * that claim identified it into @caller. */
static bool claim_deferred_of(Mailbags *mailbags, pid_t pid, ClaimFollow *follow, Caller *caller)
{
        bool found = false;
        g_mutex_lock(&mailbags->deferred_mutex);
        for (guint i = 0; i < mailbags->deferred->len && !found; i++) {
                const Claim *d = g_ptr_array_index(mailbags->deferred, i);
                if (d->caller.pid != pid)
                        continue;
                follow->po = d->po;
                follow->kind = d->plan.kind;
                g_strlcpy(follow->name, d->plan.name, sizeof(follow->name));
                *caller = d->caller;
                found = true;
        }
        g_mutex_unlock(&mailbags->deferred_mutex);
        return found;
}

/* The caller's session, looked up only while @po is frozen: the command
 * an operator's freeze runs shares its hold. */
static pid_t claim_session_in(Postoffice *po, pid_t pid)
{
        return atomic_load(&po->frozen) ? caller_session_of(pid) : 0;
}

static pid_t claim_session(const Claim *claim)
{
        return claim_session_in(claim->po, claim->caller.pid);
}

/* The wait in the deferred claim's line is over: its reference, a
 * re-entry of that hold, is dropped at once. Whoever waited hears 0 or
 * -EINTR (withdrawn, the waiter died, the daemon stops). */
static void claim_follow_settled(void *opaque, int result)
{
        ClaimFollow *follow = opaque;
        if (result == 0)
                lease_release(follow->po->leases, follow->kind, follow->name, follow->ref);
        ClaimWaitFn done = follow->done;
        void *done_opaque = follow->opaque;
        g_free(follow);
        done(done_opaque, result < 0 ? -EINTR : 0);
}

/* Whether any claim is deferred now: only then may a program have to
 * follow one (claim_follow_start). Observing, nothing follows: every
 * claim is answered at once. */
static bool claim_deferrals_waiting(Mailbags *mailbags)
{
        return atomic_load(&mailbags->deferred_waiting) > 0 && !atomic_load(&mailbags->observe);
}

/* A program whose create was answered before its lease came reaches
 * nothing until that lease comes: what it does next (@what, for the log)
 * waits, in the same line, as a reference dropped once granted.
 * CLAIM_PENDING (@done follows, with 0 or -errno) or 0 (process @pid has
 * no such wait, or its lease came meanwhile). */
static int claim_follow_start(Mailbags *mailbags, pid_t pid, const char *what, const char *relpath,
                              ClaimWaitFn done, void *opaque, uint64_t *wait_id)
{
        ClaimFollow *follow = g_new0(ClaimFollow, 1);
        Caller caller;
        if (!claim_deferred_of(mailbags, pid, follow, &caller)) {
                g_free(follow);
                return 0;
        }
        follow->ref = mailbags_new_ref(mailbags);
        follow->done = done;
        follow->opaque = opaque;
        LeaseRequest request = {
                .kind = follow->kind,
                .name = follow->name,
                .pid = pid,
                .program = caller.program,
                .protocol = "deferred",
                .ref = follow->ref,
                .handle = false,
                .timeout_ms = INT_MAX,
                .done = claim_follow_settled,
                .opaque = follow,
                .session = claim_session_in(follow->po, pid),
        };
        Postoffice *po = follow->po;
        int r = lease_acquire(po->leases, &request, wait_id);
        if (r == LEASE_PENDING) {
                log_debug("%s of %s by pid %d waits for the lease its create deferred", what,
                          relpath ? relpath : "a file it created", (int)pid);
                return CLAIM_PENDING;
        }
        /* Came meanwhile (or cannot be waited for): nothing to wait for. */
        if (r == 0)
                lease_release(po->leases, request.kind, request.name, request.ref);
        g_free(follow);
        return 0;
}

/* Asks for @claim's own lease, as planned: 0 (held), LEASE_PENDING
 * (claim_lease_done follows) or the caller's -errno. */
static int claim_acquire(Claim *claim, uint64_t *wait_id)
{
        PolicyLeaseWait wait = policy_lease_wait(claim->caller.program, claim->creating);
        /* Observing: every claim that meets a hold is answered at once, as
         * a deferred create is, and its lease follows in its turn. */
        bool observe = atomic_load(&claim->mailbags->observe);
        if (observe)
                wait.deferred = true;
        LeaseRequest request = {
                .kind = claim->plan.kind,
                .name = claim->plan.name,
                .pid = claim->caller.pid,
                .program = claim->caller.program,
                .protocol = claim->plan.protocol,
                .ref = claim->ref,
                .handle = !claim->plan.until_unlink,
                .timeout_ms = wait.timeout_ms,
                .wait_if_closing = wait.wait_if_closing,
                .done = wait.deferred ? claim_deferred_done : claim_lease_done,
                .opaque = claim,
                .session = claim_session(claim),
                .observe = observe,
        };
        if (wait.deferred) {
                /* Both owners, and listed, before the callback may run. */
                claim->deferred = true;
                claim->owners = 2;
                claim->state = CLAIM_DEFERRED_WAITING;
                g_mutex_init(&claim->deferred_mutex);
                claim_deferred_track(claim->mailbags, claim, true);
        }
        int r = lease_acquire(claim->po->leases, &request, wait_id);
        if (wait.deferred && r != LEASE_PENDING) {
                /* Settled at once: an ordinary claim after all. */
                claim_deferred_track(claim->mailbags, claim, false);
                g_mutex_clear(&claim->deferred_mutex);
                claim->deferred = false;
        }
        return r < 0 ? claim_errno(claim, r) : r;
}

/* The rest of claim_begin() once the caller's program no longer waits for
 * a deferred claim of its own: 0 (*@claim_out NULL when nothing is
 * held), CLAIM_PENDING or -errno; frees @claim unless it is handed on. */
static int claim_begin_own(Mailbags *mailbags, Claim *claim, Claim **claim_out, uint64_t *wait_id)
{
        *claim_out = NULL;
        if (!claim->plan.needed) {
                claim_free(claim);
                return 0;
        }
        claim->ref = mailbags_new_ref(mailbags);
        int r = claim_acquire(claim, wait_id);
        if (r < 0 || r == LEASE_UNTRACKED) {
                claim_free(claim);
                return r < 0 ? r : 0;
        }
        *claim_out = claim;
        if (r == LEASE_PENDING && claim->deferred) {
                claim->overlapped = atomic_load(&mailbags->observe);
                claim->wait_id = *wait_id;
                *wait_id = 0;
                log_debug("%s of %s by pid %d (%s) answered at once; its lease follows",
                          claim->creating ? "create" : "open", claim->relpath,
                          (int)claim->caller.pid, claim->caller.program);
                return 0;
        }
        return r == LEASE_PENDING ? CLAIM_PENDING : 0;
}

/* The wait for the program's deferred claim is over: on with the open's
 * own claim. Runs on whichever thread settled that wait. */
static void claim_follow_done(void *opaque, int result)
{
        Claim *claim = opaque;
        Mailbags *mailbags = claim->mailbags;
        ClaimReadyFn ready = claim->ready;
        void *ready_opaque = claim->opaque;
        Postoffice *po = NULL;
        PolicyPlan plan;
        int r = mailbags_plan(mailbags, claim->relpath, claim->flags, false, claim->thread_id,
                              &claim->caller, &plan, &po);
        if (r < 0) {
                claim_free(claim);
                ready(ready_opaque, NULL, r);
                return;
        }
        claim->plan = plan;
        claim->po = po;
        Claim *own = NULL;
        uint64_t wait_id = 0;
        r = claim_begin_own(mailbags, claim, &own, &wait_id);
        if (r != CLAIM_PENDING)
                ready(ready_opaque, own, r);
}

/* An open by a program whose create was answered before its lease came
 * waits for that lease first (claim_follow_start). Its own plan is made
 * once the wait is over: it may hold a different lease by then. */
static int claim_follow(Mailbags *mailbags, Claim *claim, uint64_t *wait_id)
{
        if (!claim_deferrals_waiting(mailbags))
                return 0;
        if (claim->caller.pid == 0)
                caller_identify(claim->thread_id, &claim->caller.pid, claim->caller.program,
                                sizeof(claim->caller.program));
        return claim_follow_start(mailbags, claim->caller.pid, "open", claim->relpath,
                                  claim_follow_done, claim, wait_id);
}

pid_t claim_deferred_process(Mailbags *mailbags, pid_t thread_id)
{
        if (!claim_deferrals_waiting(mailbags))
                return 0;
        Caller caller = {0};
        caller_identify(thread_id, &caller.pid, caller.program, sizeof(caller.program));
        ClaimFollow follow;
        return caller.pid > 0 && claim_deferred_of(mailbags, caller.pid, &follow, &caller)
                       ? caller.pid
                       : 0;
}

int claim_await_deferred(Mailbags *mailbags, pid_t pid, const char *what, const char *relpath,
                         ClaimWaitFn done, void *opaque, uint64_t *wait_id)
{
        *wait_id = 0;
        if (!claim_deferrals_waiting(mailbags))
                return 0;
        return claim_follow_start(mailbags, pid, what, relpath, done, opaque, wait_id);
}

int claim_begin(Mailbags *mailbags, const ClaimRequest *req, Claim **claim_out, uint64_t *wait_id)
{
        *claim_out = NULL;
        *wait_id = 0;
        Claim *claim = g_new0(Claim, 1);
        claim->mailbags = mailbags;
        claim->relpath = g_strdup(req->relpath);
        claim->flags = req->flags;
        claim->thread_id = req->thread_id;
        claim->creating = req->creating;
        claim->ready = req->ready;
        claim->opaque = req->opaque;
        if (!req->creating && claim_follow(mailbags, claim, wait_id) == CLAIM_PENDING) {
                *claim_out = claim;
                return CLAIM_PENDING;
        }
        int r = mailbags_plan(mailbags, req->relpath, req->flags, req->creating, req->thread_id,
                              &claim->caller, &claim->plan, &claim->po);
        if (r < 0) {
                claim_free(claim);
                return r;
        }
        return claim_begin_own(mailbags, claim, claim_out, wait_id);
}

/* claim_confirm() of a deferred claim: the file is made; its lease may
 * have come meanwhile. Never refused: the create was answered as made. */
static int claim_confirm_deferred(Mailbags *mailbags, Claim **claim_ref, uint64_t parent_node,
                                  int fd)
{
        Claim *claim = *claim_ref;
        struct stat st;
        bool known = fd >= 0 && fstat(fd, &st) == 0;
        g_mutex_lock(&claim->deferred_mutex);
        claim->file_known = known;
        if (known)
                claim->file = st;
        claim->parent_node = parent_node;
        bool hand_over = claim->plan.until_unlink && claim->state == CLAIM_DEFERRED_HELD;
        bool release = hand_over && !known;
        if (claim->plan.until_unlink) {
                /* The handle does not carry a lock file's hold. */
                claim->handle_gone = true;
                if (hand_over)
                        claim->state = CLAIM_DEFERRED_ENDED;
        }
        g_mutex_unlock(&claim->deferred_mutex);
        if (!claim->plan.until_unlink)
                return 0;
        if (hand_over && !release)
                claim_hand_to_registry(mailbags, claim, parent_node, &st);
        if (release)
                lease_release(claim->po->leases, claim->plan.kind, claim->plan.name, claim->ref);
        *claim_ref = NULL;
        claim_unref(claim);
        return 0;
}

int claim_confirm(Mailbags *mailbags, Claim **claim_ref, uint64_t parent_node, int fd)
{
        Claim *claim = *claim_ref;
        if (!claim)
                return 0;
        if (claim->deferred)
                return claim_confirm_deferred(mailbags, claim_ref, parent_node, fd);
        const PolicyPlan *plan = &claim->plan;
        if (!lease_holds(claim->po->leases, plan->kind, plan->name, claim->ref)) {
                /* Broken by an operator, or the caller died, between the
                 * grant and the open. */
                int error = -policy_busy_errno(claim->caller.program);
                *claim_ref = NULL;
                claim_free(claim);
                return error;
        }
        if (plan->until_unlink) {
                /* A lock file: the hold is the file's until it is unlinked. */
                struct stat st;
                bool known = fd >= 0 && fstat(fd, &st) == 0;
                claim_hand_to_registry(mailbags, claim, parent_node, known ? &st : NULL);
                *claim_ref = NULL;
                claim_free(claim);
        }
        return 0;
}

const char *claim_outcome(const Claim *claim, bool waited)
{
        if (claim->overlapped)
                return "overlapped";
        if (claim->deferred)
                return "deferred";
        return waited ? "waited" : "granted";
}

bool claim_is_deferred(const Claim *claim)
{
        return claim && claim->deferred;
}

const char *claim_protocol(const Claim *claim)
{
        return claim->plan.protocol;
}

const Caller *claim_caller(const Claim *claim)
{
        return claim->caller.pid > 0 ? &claim->caller : NULL;
}

void claim_cancel(Mailbags *mailbags, Claim *claim)
{
        claim_release(mailbags, claim);
}

void claim_release(Mailbags *mailbags, Claim *claim)
{
        if (!claim)
                return;
        if (claim->deferred) {
                claim_deferred_drop(mailbags, claim);
                return;
        }
        lease_release(claim->po->leases, claim->plan.kind, claim->plan.name, claim->ref);
        claim_free(claim);
}

void claim_closing(Mailbags *mailbags, Claim *claim, pid_t thread_id)
{
        if (!claim)
                return;
        /* A thread whose id is the holder's pid is that process's leader:
         * the common single-threaded close costs no read of /proc. */
        if (thread_id != claim->caller.pid &&
            caller_process_of_thread(thread_id) != claim->caller.pid)
                return;
        lease_mark_closing(claim->po->leases, claim->plan.kind, claim->plan.name, claim->ref);
}

void claim_interrupt(Mailbags *mailbags, uint64_t wait_id)
{
        mailbags_cancel_wait(mailbags, wait_id);
}

int claim_needed(Mailbags *mailbags, const char *relpath, int flags)
{
        PolicyPlan plan;
        int r = mailbags_plan_only(mailbags, relpath, flags, false, &plan);
        return r < 0 ? r : plan.needed;
}

int claim_name_may_be_made(Mailbags *mailbags, const char *relpath, const char *op)
{
        PolicyPlan plan;
        int r = mailbags_plan_only(mailbags, relpath, O_WRONLY | O_CREAT | O_EXCL, true, &plan);
        /* A postoffice that cannot be protected: the request fails or
         * succeeds on its own, as any other name there. */
        if (r < 0 || policy_name_refusal(&plan) == 0 || atomic_load(&mailbags->observe))
                return 0;
        log_info("%s onto %s refused: a lock file is made by creating it", op, relpath);
        return policy_name_refusal(&plan);
}
