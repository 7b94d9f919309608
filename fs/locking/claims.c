/* claims.c - plan, lease and errno of an open, in one place (claims.h). */
#include "claims.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>

#include "caller.h"
#include "policy.h"
#include "lease.h"

struct Claim {
        Postoffice *po; /* whose lease manager holds it; lives as long as the daemon */
        PolicyPlan plan;
        Caller caller;
        char *relpath;
        uint64_t ref;
        bool creating;
        ClaimReadyFn ready;
        void *opaque;
};

static void claim_free(Claim *claim)
{
        g_free(claim->relpath);
        g_free(claim);
}

/* What the lease manager says, as the caller's layer must hear it. */
static int claim_errno(const Claim *claim, int lease_result)
{
        switch (lease_result) {
        case -EBUSY:
                return -policy_busy_errno(claim->caller.program);
        case -EDEADLK:
                /* Callers that never wait queue only for a hold being
                 * closed; to them a refusal is busy like any other. */
                return policy_caller_may_wait(claim->caller.program)
                               ? -EDEADLK
                               : -policy_busy_errno(claim->caller.program);
        case -ESRCH:     /* the waiting process died: nobody to answer */
        case -ECANCELED: /* the daemon stops */
                return -EINTR;
        default:
                return lease_result;
        }
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

/* How long a refused claim waits, as a lease timeout (policy.h says who
 * waits): never, the kind's default, or until granted. A create by most
 * callers never waits: the kernel holds the folder's lock for the whole
 * create, so a waiting create of P1/INQUEUE3.002 would stop every other
 * name change in P1, the holder's own unlink of its lock file included,
 * until it timed out. */
static int claim_timeout_ms(const Claim *claim)
{
        switch (policy_caller_wait(claim->caller.program, claim->creating)) {
        case POLICY_WAIT_NEVER:
                return 0;
        case POLICY_WAIT_UNLIMITED:
                return INT_MAX;
        case POLICY_WAIT_LIMITED:
        default:
                return -1;
        }
}

int claim_begin(Mailbags *mailbags, const ClaimRequest *req, Claim **claim_out, uint64_t *wait_id)
{
        *claim_out = NULL;
        *wait_id = 0;
        g_autofree Claim *claim = g_new0(Claim, 1);
        int r = mailbags_plan(mailbags, req->relpath, req->flags, req->creating, req->thread_id,
                              &claim->caller, &claim->plan, &claim->po);
        if (r < 0 || !claim->plan.needed)
                return r;

        claim->relpath = g_strdup(req->relpath);
        claim->creating = req->creating;
        claim->ready = req->ready;
        claim->opaque = req->opaque;
        claim->ref = mailbags_new_ref(mailbags);
        LeaseRequest request = {
                .kind = claim->plan.kind,
                .name = claim->plan.name,
                .pid = claim->caller.pid,
                .program = claim->caller.program,
                .protocol = claim->plan.protocol,
                .ref = claim->ref,
                .handle = !claim->plan.until_unlink,
                .timeout_ms = claim_timeout_ms(claim),
                /* Even a caller that may not wait waits for a release the
                 * kernel has already sent: Windows frees a share when
                 * CloseHandle returns, and smbd and wineserver expect that. */
                .wait_if_closing = true,
                .done = claim_lease_done,
                .opaque = claim,
        };
        r = lease_acquire(claim->po->leases, &request, wait_id);
        if (r == LEASE_PENDING) {
                *claim_out = g_steal_pointer(&claim);
                return CLAIM_PENDING;
        }
        if (r < 0) {
                r = claim_errno(claim, r);
                g_free(claim->relpath);
                return r;
        }
        *claim_out = g_steal_pointer(&claim);
        return 0;
}

int claim_confirm(Mailbags *mailbags, Claim **claim_ref, uint64_t parent_node, int fd)
{
        Claim *claim = *claim_ref;
        if (!claim)
                return 0;
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
                mailbags_lockfile_created(mailbags, claim->po, claim->relpath, parent_node,
                                          known ? &st : NULL, plan, claim->ref, claim->caller.pid);
                *claim_ref = NULL;
                claim_free(claim);
        }
        return 0;
}

void claim_cancel(Mailbags *mailbags, Claim *claim)
{
        claim_release(mailbags, claim);
}

void claim_release(Mailbags *mailbags, Claim *claim)
{
        if (!claim)
                return;
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

int claim_is_lockfile_name(Mailbags *mailbags, const char *relpath)
{
        PolicyPlan plan;
        int r = mailbags_plan_only(mailbags, relpath, O_WRONLY | O_CREAT | O_EXCL, true, &plan);
        return r < 0 ? r : plan.needed && plan.until_unlink;
}
