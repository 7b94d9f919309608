/* claims.c - an open's claim carried out: the plan and the policy's answers
 * (policy.h) applied to a lease (claims.h). */
#include "claims.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>

#include "caller.h"
#include "lease.h"
#include "log.h"
#include "policy.h"

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
        PolicyLeaseWait wait = policy_lease_wait(claim->caller.program, claim->creating);
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

int claim_name_may_be_made(Mailbags *mailbags, const char *relpath, const char *op)
{
        PolicyPlan plan;
        int r = mailbags_plan_only(mailbags, relpath, O_WRONLY | O_CREAT | O_EXCL, true, &plan);
        /* A postoffice that cannot be protected: the request fails or
         * succeeds on its own, as any other name there. */
        if (r < 0 || policy_name_refusal(&plan) == 0)
                return 0;
        log_info("%s onto %s refused: a lock file is made by creating it", op, relpath);
        return policy_name_refusal(&plan);
}
