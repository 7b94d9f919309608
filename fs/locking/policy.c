/* policy.c - the locking policy (see policy.h). */
#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <string.h>

static void policy_plan_set(PolicyPlan *plan, LeaseKind kind, const char *name,
                           const char *protocol)
{
        plan->needed = true;
        plan->kind = kind;
        g_strlcpy(plan->name, name, sizeof(plan->name));
        plan->protocol = protocol;
}

void policy_plan_open(const PoClass *cls, int open_flags, bool creating, PolicyPlan *plan)
{
        memset(plan, 0, sizeof(*plan));
        bool read_only = (open_flags & O_ACCMODE) == O_RDONLY;
        bool claims = creating || (open_flags & O_TRUNC) || !read_only;

        switch (cls->role) {
        case PO_ROLE_SESSION_LOCK:
                if (!cls->is_queue)
                        return;
                if (cls->lock_protocol == PO_LOCK_PROTOCOL_SESSION_FILE) {
                        policy_plan_set(plan, LEASE_SESSION, cls->name, "0LK");
                        plan->os_lock_style = true;
                } else if (cls->lock_protocol == PO_LOCK_PROTOCOL_V20_FILE && claims) {
                        /* Reading another program's lock file is how Mail 2.x
                         * detects it; only making or writing one claims the
                         * queue. */
                        policy_plan_set(plan, LEASE_SESSION, cls->name, "V20");
                        plan->until_unlink = true;
                        plan->v20_style = true;
                }
                return;
        case PO_ROLE_MAILBAG_KEY:
                if (!read_only)
                        policy_plan_set(plan, LEASE_KEY_WRITE, cls->name, "key-write");
                else if (cls->is_queue)
                        policy_plan_set(plan, LEASE_SESSION, cls->name, "queue-read");
                return;
        case PO_ROLE_MAILBAG_MBG:
                /* A write open of MBG is a producer appending a record: the
                 * KEY critical section serialises producers, not this. */
                if (read_only && cls->is_queue)
                        policy_plan_set(plan, LEASE_SESSION, cls->name, "queue-read");
                return;
        case PO_ROLE_EXCLUSIVE:
                policy_plan_set(plan, LEASE_EXCLUSIVE, cls->name, "exclusive");
                return;
        default:
                return;
        }
}

int policy_leases_of(const PoClass *cls, LeaseKind kinds[LEASE_KIND_COUNT])
{
        /* Every way a program may open the file: read, write, create. */
        static const struct {
                int flags;
                bool creating;
        } opens[] = {{O_RDONLY, false}, {O_RDWR, false}, {O_RDWR | O_CREAT, true}};
        bool taken[LEASE_KIND_COUNT] = {false};
        for (gsize i = 0; i < G_N_ELEMENTS(opens); i++) {
                PolicyPlan plan;
                policy_plan_open(cls, opens[i].flags, opens[i].creating, &plan);
                if (plan.needed)
                        taken[plan.kind] = true;
        }
        int n = 0;
        for (int kind = 0; kind < LEASE_KIND_COUNT; kind++)
                if (taken[kind])
                        kinds[n++] = (LeaseKind)kind;
        return n;
}

int policy_v20_mode_parse(const char *text, PolicyV20Mode *mode)
{
        if (!text || g_ascii_strcasecmp(text, "any") == 0)
                *mode = POLICY_V20_ANY;
        else if (g_ascii_strcasecmp(text, "all") == 0)
                *mode = POLICY_V20_ALL;
        else if (g_ascii_strcasecmp(text, "none") == 0)
                *mode = POLICY_V20_NONE;
        else
                return -EINVAL;
        return 0;
}

bool policy_plan_is_lockfile_reopen(const PolicyPlan *plan, bool creating)
{
        return plan->needed && plan->until_unlink && !creating;
}

int policy_name_refusal(const PolicyPlan *plan)
{
        return plan->needed && plan->until_unlink ? -EACCES : 0;
}

bool policy_plan_is_misconfigured(const PolicyPlan *plan, PolicyV20Mode mode)
{
        /* A read-only open of the queue is made by both kinds of program
         * (a -V20 External reads the queue it has locked), so it tells
         * nothing about the caller's configuration. */
        if (mode == POLICY_V20_ALL)
                return plan->os_lock_style;
        if (mode == POLICY_V20_NONE)
                return plan->v20_style;
        return false;
}

/* ---- who hears "busy" how (policy.h) ------------------------------- */

typedef struct {
        char program[64]; /* a comm name; a prefix when prefix is set */
        bool prefix;
        PolicyWait wait;
        int busy_errno;
} PolicyCallerRule;

/* Built in, and what -o busy_answer= adds after them. The last matching
 * rule wins. Written only before the daemon serves (main.c), read without
 * a lock afterwards. */
static const PolicyCallerRule builtin_rules[] = {
        {"smbd", false, POLICY_WAIT_NEVER, ETXTBSY},
        {"wineserver", true, POLICY_WAIT_NEVER, EAGAIN},
        {"dosbox", false, POLICY_WAIT_UNLIMITED, EBUSY},
        {"dosbox-x", false, POLICY_WAIT_UNLIMITED, EBUSY},
        {"dosemu2.bin", false, POLICY_WAIT_NEVER, EBUSY},
        {"dosemu.bin", false, POLICY_WAIT_NEVER, EBUSY},
};
static GArray *added_rules; /* of PolicyCallerRule */

static bool rule_matches(const PolicyCallerRule *rule, const char *program)
{
        return rule->prefix ? g_str_has_prefix(program, rule->program)
                            : g_str_equal(program, rule->program);
}

static PolicyCallerRule policy_caller_rule(const char *program)
{
        PolicyCallerRule rule = {"", false, POLICY_WAIT_LIMITED, EBUSY};
        if (!program)
                return rule;
        for (gsize i = 0; i < G_N_ELEMENTS(builtin_rules); i++)
                if (rule_matches(&builtin_rules[i], program))
                        rule = builtin_rules[i];
        for (guint i = 0; added_rules && i < added_rules->len; i++) {
                const PolicyCallerRule *added = &g_array_index(added_rules, PolicyCallerRule, i);
                if (rule_matches(added, program))
                        rule = *added;
        }
        return rule;
}

int policy_busy_errno(const char *program)
{
        return policy_caller_rule(program).busy_errno;
}

PolicyWait policy_caller_wait(const char *program, bool creating)
{
        PolicyWait wait = policy_caller_rule(program).wait;
        if (!creating)
                return wait;
        /* A create holds its folder's lock in the kernel while it waits,
         * so every other name change there (the holder's own unlink of its
         * lock file or of a P1 file) would stop meanwhile. Only a program
         * that would otherwise hear "file not found" is not refused: its
         * create is answered at once and its lease deferred. */
        return wait == POLICY_WAIT_UNLIMITED ? POLICY_WAIT_UNLIMITED : POLICY_WAIT_NEVER;
}

bool policy_caller_may_wait(const char *program)
{
        return policy_caller_wait(program, false) != POLICY_WAIT_NEVER;
}

PolicyLeaseWait policy_lease_wait(const char *program, bool creating)
{
        /* Even a caller that may not wait waits for a release the kernel
         * has already sent: Windows frees a share when CloseHandle returns,
         * and smbd and wineserver expect that. */
        PolicyLeaseWait wait = {.timeout_ms = -1, .wait_if_closing = true};
        switch (policy_caller_wait(program, creating)) {
        case POLICY_WAIT_NEVER:
                wait.timeout_ms = 0;
                break;
        case POLICY_WAIT_UNLIMITED:
                wait.timeout_ms = INT_MAX;
                wait.deferred = creating;
                break;
        case POLICY_WAIT_LIMITED:
                break;
        }
        return wait;
}

int policy_refusal_errno(const char *program, int lease_result)
{
        switch (lease_result) {
        case -EBUSY:
                return -policy_busy_errno(program);
        case -EDEADLK:
                /* Callers that never wait queue only for a hold being
                 * closed; to them a refusal is busy like any other. */
                return policy_caller_may_wait(program) ? -EDEADLK : -policy_busy_errno(program);
        case -ESRCH:     /* the waiting process died: nobody to answer */
        case -ECANCELED: /* the daemon stops */
                return -EINTR;
        default:
                return lease_result;
        }
}

static int errno_by_name(const char *name)
{
        static const struct {
                const char *name;
                int value;
        } names[] = {{"EAGAIN", EAGAIN}, {"EBUSY", EBUSY}, {"ETXTBSY", ETXTBSY},
                     {"EACCES", EACCES}, {"EPERM", EPERM}};
        for (gsize i = 0; i < G_N_ELEMENTS(names); i++)
                if (g_ascii_strcasecmp(name, names[i].name) == 0)
                        return names[i].value;
        return 0;
}

int policy_busy_answer_add(const char *spec)
{
        const char *colon = spec ? strrchr(spec, ':') : NULL;
        if (!colon || colon == spec || !colon[1])
                return -EINVAL;
        PolicyCallerRule rule = {"", false, POLICY_WAIT_LIMITED, EBUSY};
        size_t len = (size_t)(colon - spec);
        if (spec[len - 1] == '*') {
                rule.prefix = true;
                len--;
        }
        if (len == 0 || len >= sizeof(rule.program))
                return -EINVAL;
        memcpy(rule.program, spec, len);
        rule.program[len] = '\0';
        if (strchr(rule.program, '*') || strchr(rule.program, '/'))
                return -EINVAL;
        const char *answer = colon + 1;
        if (g_ascii_strcasecmp(answer, "wait") == 0) {
                rule.wait = POLICY_WAIT_UNLIMITED;
        } else if (g_ascii_strcasecmp(answer, "queue") == 0) {
                rule.wait = POLICY_WAIT_LIMITED;
        } else {
                rule.busy_errno = errno_by_name(answer);
                if (!rule.busy_errno)
                        return -EINVAL;
                rule.wait = POLICY_WAIT_NEVER;
        }
        if (!added_rules)
                added_rules = g_array_new(FALSE, FALSE, sizeof(PolicyCallerRule));
        g_array_append_val(added_rules, rule);
        return 0;
}

void policy_busy_answers_reset(void)
{
        g_clear_pointer(&added_rules, g_array_unref);
}
