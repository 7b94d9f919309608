/* test-policy.c - the locking policy as a table: for each kind of
 * postoffice file and each way of opening it, which lease it takes. The
 * paths go through the real default profile's classifier. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include "policy.h"

static PoProfile *profile;

static void setup(void)
{
        profile = po_profile_new_default();
}

static void teardown(void)
{
        po_profile_free(profile);
}

TestSuite(guard, .init = setup, .fini = teardown);

typedef struct {
        const char *path;
        int flags;
        bool creating;
        bool needed;
        LeaseKind kind;
        const char *name;
        const char *protocol;
        bool until_unlink;
} PlanCase;

static const PlanCase plan_cases[] = {
        /* External 3.x: the session lock file, opened or created. */
        {"P1/INQUEUE3.0LK", O_RDWR, false, true, LEASE_SESSION, "INQUEUE3", "0LK", false},
        {"P1/INQUEUE3.0LK", O_RDWR | O_CREAT, true, true, LEASE_SESSION, "INQUEUE3", "0LK", false},
        {"P1/inqueue3.olk", O_RDONLY, false, true, LEASE_SESSION, "INQUEUE3", "0LK", false},
        /* -V20: creating or writing a lock file claims; reading does not. */
        {"P1/INQUEUE3.001", O_WRONLY | O_CREAT | O_EXCL, true, true, LEASE_SESSION, "INQUEUE3", "V20", true},
        {"P1/INQUEUE3.097", O_RDWR, false, true, LEASE_SESSION, "INQUEUE3", "V20", true},
        {"P1/INQUEUE3.042", O_RDONLY | O_TRUNC, false, true, LEASE_SESSION, "INQUEUE3", "V20", true},
        {"P1/INQUEUE3.001", O_RDONLY, false, false, 0, NULL, NULL, false},
        /* Gateways: the queue read-only is the session. */
        {"KEY/INQUEUE3.KEY", O_RDONLY, false, true, LEASE_SESSION, "INQUEUE3", "queue-read", false},
        {"MBG/SYSTEM.MBG", O_RDONLY, false, true, LEASE_SESSION, "SYSTEM", "queue-read", false},
        /* Writers: the KEY write section, for queues and users alike; the
         * MBG write is not guarded (producers append under the KEY). */
        {"KEY/INQUEUE3.KEY", O_RDWR, false, true, LEASE_KEY_WRITE, "INQUEUE3", "key-write", false},
        {"KEY/0000001A.KEY", O_WRONLY, false, true, LEASE_KEY_WRITE, "0000001A", "key-write", false},
        {"MBG/INQUEUE3.MBG", O_RDWR, false, false, 0, NULL, NULL, false},
        /* A user's mailbag has no session. */
        {"KEY/0000001A.KEY", O_RDONLY, false, false, 0, NULL, NULL, false},
        {"P1/0000001A.0LK", O_RDWR, false, false, 0, NULL, NULL, false},
        /* One process at a time. */
        {"GLB/CONTROL.GLB", O_RDONLY, false, true, LEASE_EXCLUSIVE, "GLB/CONTROL.GLB", "exclusive", false},
        {"glb/master.glb", O_RDWR, false, true, LEASE_EXCLUSIVE, "GLB/MASTER.GLB", "exclusive", false},
        /* Everything else passes through. */
        {"GLB/ACCESS.GLB", O_RDWR, false, false, 0, NULL, NULL, false},
        {"MAI/MAE/0009DF5E.MAI", O_RDWR, false, false, 0, NULL, NULL, false},
        {"P1/0000000E.P1", O_RDONLY, false, false, 0, NULL, NULL, false},
        {"", O_RDONLY, false, false, 0, NULL, NULL, false},
        {"../KEY/INQUEUE3.KEY", O_RDONLY, false, false, 0, NULL, NULL, false},
};

Test(guard, plans_follow_the_policy_table)
{
        for (size_t i = 0; i < G_N_ELEMENTS(plan_cases); i++) {
                const PlanCase *want = &plan_cases[i];
                PoClass cls;
                PolicyPlan plan;
                po_classify(profile, want->path, &cls);
                policy_plan_open(&cls, want->flags, want->creating, &plan);
                cr_expect_eq(plan.needed, want->needed, "%s flags %o: needed", want->path, want->flags);
                if (!want->needed || !plan.needed)
                        continue;
                cr_expect_eq(plan.kind, want->kind, "%s: kind %s", want->path,
                             lease_kind_to_string(plan.kind));
                cr_expect_str_eq(plan.name, want->name, "%s", want->path);
                cr_expect_str_eq(plan.protocol, want->protocol, "%s", want->path);
                cr_expect_eq(plan.until_unlink, want->until_unlink, "%s: until_unlink", want->path);
        }
}

Test(guard, v20_modes)
{
        PolicyV20Mode mode;
        cr_expect_eq(policy_v20_mode_parse("all", &mode), 0);
        cr_expect_eq(mode, POLICY_V20_ALL);
        cr_expect_eq(policy_v20_mode_parse("NONE", &mode), 0);
        cr_expect_eq(mode, POLICY_V20_NONE);
        cr_expect_eq(policy_v20_mode_parse(NULL, &mode), 0);
        cr_expect_eq(mode, POLICY_V20_ANY);
        cr_expect_eq(policy_v20_mode_parse("some", &mode), -EINVAL);
        cr_expect_eq(policy_v20_mode_parse("", &mode), -EINVAL);

        PoClass cls;
        PolicyPlan v20, session_file, queue_read;
        po_classify(profile, "P1/INQUEUE3.003", &cls);
        policy_plan_open(&cls, O_WRONLY | O_CREAT, true, &v20);
        po_classify(profile, "P1/INQUEUE3.0LK", &cls);
        policy_plan_open(&cls, O_RDWR, false, &session_file);
        po_classify(profile, "KEY/INQUEUE3.KEY", &cls);
        policy_plan_open(&cls, O_RDONLY, false, &queue_read);

        /* KB Q103960: all or none. A queue read is made by both kinds of
         * program and never counts. */
        cr_expect(policy_plan_is_misconfigured(&session_file, POLICY_V20_ALL));
        cr_expect_not(policy_plan_is_misconfigured(&v20, POLICY_V20_ALL));
        cr_expect(policy_plan_is_misconfigured(&v20, POLICY_V20_NONE));
        cr_expect_not(policy_plan_is_misconfigured(&session_file, POLICY_V20_NONE));
        for (int m = POLICY_V20_ANY; m <= POLICY_V20_NONE; m++)
                cr_expect_not(policy_plan_is_misconfigured(&queue_read, (PolicyV20Mode)m));
        cr_expect_not(policy_plan_is_misconfigured(&v20, POLICY_V20_ANY));
}

Test(guard, refusal_errno_and_waiting_by_layer)
{
        /* smbd turns ETXTBSY into a sharing violation, wineserver EAGAIN;
         * both answer by themselves. DOSBox turns every refusal into "file
         * not found", so it waits; dosemu answers access denied at once;
         * everyone else gets EBUSY after waiting up to the lock timeout. */
        policy_busy_answers_reset();
        cr_expect_eq(policy_busy_errno("smbd"), ETXTBSY);
        cr_expect_eq(policy_busy_errno("wineserver"), EAGAIN);
        cr_expect_eq(policy_busy_errno("wineserver64"), EAGAIN);
        cr_expect_eq(policy_busy_errno("EXTERNAL.EXE"), EBUSY);
        cr_expect_eq(policy_busy_errno("smbdx"), EBUSY);
        cr_expect_eq(policy_busy_errno("dosbox"), EBUSY);
        cr_expect_eq(policy_busy_errno(NULL), EBUSY);
        cr_expect_not(policy_caller_may_wait("smbd"));
        cr_expect_not(policy_caller_may_wait("wineserver"));
        cr_expect_not(policy_caller_may_wait("dosemu2.bin"));
        cr_expect(policy_caller_may_wait("dosemu2"));
        cr_expect(policy_caller_may_wait(NULL));

        cr_expect_eq(policy_caller_wait("dosbox", false), POLICY_WAIT_UNLIMITED);
        cr_expect_eq(policy_caller_wait("dosbox-x", false), POLICY_WAIT_UNLIMITED);
        cr_expect_eq(policy_caller_wait("dosboxer", false), POLICY_WAIT_LIMITED);
        cr_expect_eq(policy_caller_wait("EXTERNAL.EXE", false), POLICY_WAIT_LIMITED);
        cr_expect_eq(policy_caller_wait("smbd", false), POLICY_WAIT_NEVER);
        /* Creates never wait (the folder is locked meanwhile): a program
         * that cannot hear "busy" has its create answered and its lease
         * deferred; everyone else is refused at once. */
        cr_expect_eq(policy_caller_wait("dosbox", true), POLICY_WAIT_UNLIMITED);
        PolicyLeaseWait dos_create = policy_lease_wait("dosbox", true);
        cr_expect(dos_create.deferred);
        cr_expect_eq(dos_create.timeout_ms, INT_MAX);
        cr_expect_not(policy_lease_wait("dosbox", false).deferred);
        cr_expect_not(policy_lease_wait("EXTERNAL.EXE", true).deferred);
        cr_expect_not(policy_lease_wait("smbd", true).deferred);
        cr_expect_eq(policy_caller_wait("EXTERNAL.EXE", true), POLICY_WAIT_NEVER);
        cr_expect_eq(policy_caller_wait("smbd", true), POLICY_WAIT_NEVER);
        cr_expect_eq(policy_caller_wait(NULL, true), POLICY_WAIT_NEVER);
}

Test(guard, busy_answers_from_options)
{
        policy_busy_answers_reset();
        cr_expect_eq(policy_busy_answer_add("dosbox:EACCES"), 0);
        cr_expect_eq(policy_busy_errno("dosbox"), EACCES);
        cr_expect_eq(policy_caller_wait("dosbox", false), POLICY_WAIT_NEVER);
        cr_expect_eq(policy_caller_wait("dosbox", true), POLICY_WAIT_NEVER);

        cr_expect_eq(policy_busy_answer_add("myemu*:wait"), 0);
        cr_expect_eq(policy_caller_wait("myemu", false), POLICY_WAIT_UNLIMITED);
        cr_expect_eq(policy_caller_wait("myemu-sdl", true), POLICY_WAIT_UNLIMITED);
        cr_expect_eq(policy_caller_wait("my", false), POLICY_WAIT_LIMITED);

        /* The later rule wins, also over a built-in one. */
        cr_expect_eq(policy_busy_answer_add("smbd:eagain"), 0);
        cr_expect_eq(policy_busy_errno("smbd"), EAGAIN);
        cr_expect_eq(policy_busy_answer_add("smbd:queue"), 0);
        cr_expect_eq(policy_busy_errno("smbd"), EBUSY);
        cr_expect(policy_caller_may_wait("smbd"));

        const char *bad[] = {"dosbox", "dosbox:", ":wait", "*:wait", "dos*box:wait",
                             "dosbox:ENOENT", "dosbox:later", "a/b:wait", NULL};
        for (const char **spec = bad; *spec; spec++)
                cr_expect_eq(policy_busy_answer_add(*spec), -EINVAL, "%s", *spec);
        cr_expect_eq(policy_busy_answer_add(NULL), -EINVAL);

        policy_busy_answers_reset();
        cr_expect_eq(policy_busy_errno("smbd"), ETXTBSY);
        cr_expect_eq(policy_caller_wait("dosbox", false), POLICY_WAIT_UNLIMITED);
}
