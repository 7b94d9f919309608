/* guard.c - the locking policy (see guard.h). */
#include "guard.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>

static void guard_plan_set(GuardPlan *plan, LeaseKind kind, const char *name,
                           const char *protocol)
{
        plan->needed = true;
        plan->kind = kind;
        g_strlcpy(plan->name, name, sizeof(plan->name));
        plan->protocol = protocol;
}

void guard_plan_open(const PoClass *cls, int open_flags, bool creating, GuardPlan *plan)
{
        memset(plan, 0, sizeof(*plan));
        bool read_only = (open_flags & O_ACCMODE) == O_RDONLY;
        bool claims = creating || (open_flags & O_TRUNC) || !read_only;

        switch (cls->role) {
        case PO_ROLE_SESSION_LOCK:
                if (!cls->is_queue)
                        return;
                if (cls->lock_protocol == PO_LOCK_PROTOCOL_SESSION_FILE) {
                        guard_plan_set(plan, LEASE_SESSION, cls->name, "0LK");
                        plan->os_lock_style = true;
                } else if (cls->lock_protocol == PO_LOCK_PROTOCOL_V20_FILE && claims) {
                        /* Reading another program's lock file is how Mail 2.x
                         * detects it; only making or writing one claims the
                         * queue. */
                        guard_plan_set(plan, LEASE_SESSION, cls->name, "V20");
                        plan->until_unlink = true;
                        plan->v20_style = true;
                }
                return;
        case PO_ROLE_MAILBAG_KEY:
                if (!read_only)
                        guard_plan_set(plan, LEASE_KEY_WRITE, cls->name, "key-write");
                else if (cls->is_queue)
                        guard_plan_set(plan, LEASE_SESSION, cls->name, "queue-read");
                return;
        case PO_ROLE_MAILBAG_MBG:
                /* A write open of MBG is a producer appending a record: the
                 * KEY critical section serialises producers, not this. */
                if (read_only && cls->is_queue)
                        guard_plan_set(plan, LEASE_SESSION, cls->name, "queue-read");
                return;
        case PO_ROLE_EXCLUSIVE:
                guard_plan_set(plan, LEASE_EXCLUSIVE, cls->name, "exclusive");
                return;
        default:
                return;
        }
}

int guard_leases_of(const PoClass *cls, LeaseKind kinds[LEASE_KIND_COUNT])
{
        /* Every way a program may open the file: read, write, create. */
        static const struct {
                int flags;
                bool creating;
        } opens[] = {{O_RDONLY, false}, {O_RDWR, false}, {O_RDWR | O_CREAT, true}};
        bool taken[LEASE_KIND_COUNT] = {false};
        for (gsize i = 0; i < G_N_ELEMENTS(opens); i++) {
                GuardPlan plan;
                guard_plan_open(cls, opens[i].flags, opens[i].creating, &plan);
                if (plan.needed)
                        taken[plan.kind] = true;
        }
        int n = 0;
        for (int kind = 0; kind < LEASE_KIND_COUNT; kind++)
                if (taken[kind])
                        kinds[n++] = (LeaseKind)kind;
        return n;
}

int guard_v20_mode_parse(const char *text, GuardV20Mode *mode)
{
        if (!text || g_ascii_strcasecmp(text, "any") == 0)
                *mode = GUARD_V20_ANY;
        else if (g_ascii_strcasecmp(text, "all") == 0)
                *mode = GUARD_V20_ALL;
        else if (g_ascii_strcasecmp(text, "none") == 0)
                *mode = GUARD_V20_NONE;
        else
                return -EINVAL;
        return 0;
}

bool guard_plan_is_misconfigured(const GuardPlan *plan, GuardV20Mode mode)
{
        /* A read-only open of the queue is made by both kinds of program
         * (a -V20 External reads the queue it has locked), so it tells
         * nothing about the caller's configuration. */
        if (mode == GUARD_V20_ALL)
                return plan->os_lock_style;
        if (mode == GUARD_V20_NONE)
                return plan->v20_style;
        return false;
}

/* The layers that retry or refuse by themselves (see guard.h). */
static bool program_is_sharing_layer(const char *program)
{
        return program && (g_str_has_prefix(program, "wineserver") || g_str_equal(program, "smbd"));
}

int guard_busy_errno(const char *program)
{
        return program_is_sharing_layer(program) ? EAGAIN : EBUSY;
}

bool guard_caller_may_wait(const char *program)
{
        return !program_is_sharing_layer(program);
}
