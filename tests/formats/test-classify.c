/* test-classify.c - po_classify: a table of paths and their roles, in every
 * case, plus hostile input that must come out as OTHER without a crash. */
#include "profile.h"
#include "test-util.h"

typedef struct {
        const char *path;
        PoRole role;
        const char *name;
        bool is_queue;
        PoLockProtocol protocol;
        unsigned process;
        uint32_t number;
} ClassifyCase;

static const ClassifyCase classify_cases[] = {
        { "KEY/INQUEUE3.KEY", PO_ROLE_MAILBAG_KEY, "INQUEUE3", true, 0, 0, 0 },
        { "MBG/INQUEUE3.MBG", PO_ROLE_MAILBAG_MBG, "INQUEUE3", true, 0, 0, 0 },
        { "KEY/INQUEUE.KEY", PO_ROLE_MAILBAG_KEY, "INQUEUE", true, 0, 0, 0 },
        { "MBG/SYSTEM.MBG", PO_ROLE_MAILBAG_MBG, "SYSTEM", true, 0, 0, 0 },
        { "MBG/0000001A.MBG", PO_ROLE_MAILBAG_MBG, "0000001A", false, 0, 0, 0 },
        { "KEY/00000000.KEY", PO_ROLE_MAILBAG_KEY, "00000000", false, 0, 0, 0 },
        { "P1/INQUEUE3.0LK", PO_ROLE_SESSION_LOCK, "INQUEUE3", true, PO_LOCK_PROTOCOL_SESSION_FILE, 0, 0 },
        { "P1/INQUEUE.OLK", PO_ROLE_SESSION_LOCK, "INQUEUE", true, PO_LOCK_PROTOCOL_SESSION_FILE, 0, 0 },
        { "P1/0000000E.0LK", PO_ROLE_SESSION_LOCK, "0000000E", false, PO_LOCK_PROTOCOL_SESSION_FILE, 0, 0 },
        { "P1/INQUEUE3.001", PO_ROLE_SESSION_LOCK, "INQUEUE3", true, PO_LOCK_PROTOCOL_V20_FILE, 1, 0 },
        { "P1/INQUEUE3.070", PO_ROLE_SESSION_LOCK, "INQUEUE3", true, PO_LOCK_PROTOCOL_V20_FILE, 70, 0 },
        { "P1/INQUEUE3.097", PO_ROLE_SESSION_LOCK, "INQUEUE3", true, PO_LOCK_PROTOCOL_V20_FILE, 97, 0 },
        { "P1/INQUEUE3.099", PO_ROLE_SESSION_LOCK, "INQUEUE3", true, PO_LOCK_PROTOCOL_V20_FILE, 99, 0 },
        { "P1/0000000E.P1", PO_ROLE_ENVELOPE, "", false, 0, 0, 0xE },
        { "MAI/MAE/0009DF5E.MAI", PO_ROLE_MESSAGE, "", false, 0, 0, 0x0009DF5E },
        { "ATT/AT0/12345670.ATT", PO_ROLE_ATTACHMENT, "", false, 0, 0, 0x12345670 },
        { "GLB/CONTROL.GLB", PO_ROLE_EXCLUSIVE, "GLB/CONTROL.GLB", false, 0, 0, 0 },
        { "GLB/TID.GLB", PO_ROLE_EXCLUSIVE, "GLB/TID.GLB", false, 0, 0, 0 },
        { "GLB/FLAG.GLB", PO_ROLE_EXCLUSIVE, "GLB/FLAG.GLB", false, 0, 0, 0 },
        { "GLB/MASTER.GLB", PO_ROLE_EXCLUSIVE, "GLB/MASTER.GLB", false, 0, 0, 0 },
        /* Not part of any protocol. */
        { "GLB/ACCESS.GLB", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "MAI/MA3/0009DF5E.MAI", PO_ROLE_OTHER, "", false, 0, 0, 0 }, /* wrong subfolder */
        { "MAI/0009DF5E.MAI", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "MAI/MAE/0009DF5E.ATT", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "MAI/MAE/9DF5E.MAI", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "ATT/MA0/12345670.ATT", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/INQUEUE3.0L", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/INQUEUE3.1LK", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/INQUEUE3.0A1", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/INQUEUE3.01", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/INQUEUE3", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/LOCKP1ID.P01", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "P1/NOTHEX.P1", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/INQUEUE3.MBG", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "MBG/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/INQUEUE33.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 }, /* 9 chars */
        { "KEY/INQUEUE3.KEY/X", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "X/KEY/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY.D/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "/", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "/KEY/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/INQUEUE3.KEY/", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY//INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "..", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "../KEY/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/../KEY/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "./KEY/INQUEUE3.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/INQ\xc3\x89UE.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "KEY/INQ UE.KEY", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "GLB/CONTROL.GLB.BAK", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        /* Near misses of an exclusive file's folder and name. */
        { "GL/CONTROL.GLB", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "GLBX/CONTROL.GLB", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "GLB/CONTROL.GL", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "GLB/CONTROL", PO_ROLE_OTHER, "", false, 0, 0, 0 },
        { "GLB/XCONTROL.GLB", PO_ROLE_OTHER, "", false, 0, 0, 0 },
};

static void classify_check(const PoProfile *profile, const ClassifyCase *c, const char *path)
{
        PoClass class;
        memset(&class, 0xAA, sizeof class); /* every field must be written */
        po_classify(profile, path, &class);
        cr_assert_eq(class.role, c->role, "%s: role %s, expected %s", path,
                     po_role_to_string(class.role), po_role_to_string(c->role));
        cr_assert_str_eq(class.name, c->name, "%s", path);
        cr_assert_eq(class.is_queue, c->is_queue, "%s", path);
        cr_assert_eq(class.lock_protocol, c->protocol, "%s", path);
        cr_assert_eq(class.process_number, c->process, "%s", path);
        cr_assert_eq(class.message_number, c->number, "%s", path);
}

Test(classify, table_in_upper_lower_and_mixed_case)
{
        g_autoptr(PoProfile) profile = po_profile_new_default();
        for (gsize i = 0; i < G_N_ELEMENTS(classify_cases); i++) {
                const ClassifyCase *c = &classify_cases[i];
                classify_check(profile, c, c->path);
                g_autofree char *lower = g_ascii_strdown(c->path, -1);
                classify_check(profile, c, lower);
                g_autofree char *mixed = g_strdup(c->path);
                for (char *p = mixed; *p; p += 2) {
                        *p = g_ascii_tolower(*p);
                        if (p[1] == '\0')
                                break;
                }
                classify_check(profile, c, mixed);
        }
}

Test(classify, null_and_hostile_input)
{
        g_autoptr(PoProfile) profile = po_profile_new_default();
        PoClass class;
        po_classify(profile, NULL, &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
        po_classify(NULL, "KEY/INQUEUE3.KEY", &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
        /* A very long path, and long components at each depth. */
        g_autofree char *longpath = g_strnfill(100000, 'A');
        po_classify(profile, longpath, &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
        g_autofree char *deep = g_strjoin("/", "KEY", longpath, NULL);
        po_classify(profile, deep, &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
        g_autofree char *slashes = g_strnfill(5000, '/');
        po_classify(profile, slashes, &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
        TestRandom random = { 42 };
        for (int i = 0; i < 20000; i++) {
                char path[64];
                gsize len = test_random_next(&random) % sizeof path;
                test_random_fill(&random, (uint8_t *)path, len);
                /* Bias towards plausible bytes so deeper branches run. */
                for (gsize j = 0; j < len; j++)
                        if (path[j] == '\0' || (test_random_next(&random) & 1))
                                path[j] = "KEYMBGP1MAIATT/.0LK0123456789ABCDEF"[test_random_next(&random) % 35];
                path[len] = '\0';
                po_classify(profile, path, &class);
                cr_assert(class.role <= PO_ROLE_ATTACHMENT);
                cr_assert(memchr(class.name, '\0', sizeof class.name) != NULL);
        }
}

Test(classify, roles_and_protocols_have_names)
{
        cr_assert_str_eq(po_role_to_string(PO_ROLE_SESSION_LOCK), "session-lock");
        cr_assert_str_eq(po_role_to_string((PoRole)99), "unknown");
        cr_assert_str_eq(po_lock_protocol_to_string(PO_LOCK_PROTOCOL_V20_FILE), "v20-file");
}

static gpointer classify_thread(gpointer data)
{
        const PoProfile *profile = data;
        for (int i = 0; i < 20000; i++) {
                PoClass class;
                const ClassifyCase *c = &classify_cases[i % G_N_ELEMENTS(classify_cases)];
                po_classify(profile, c->path, &class);
                if (class.role != c->role || strcmp(class.name, c->name) != 0)
                        return GINT_TO_POINTER(1);
        }
        return NULL;
}

Test(classify, many_threads_on_one_profile)
{
        g_autoptr(PoProfile) profile = po_profile_new_default();
        GThread *threads[8];
        for (gsize i = 0; i < G_N_ELEMENTS(threads); i++)
                threads[i] = g_thread_new("classify", classify_thread, profile);
        for (gsize i = 0; i < G_N_ELEMENTS(threads); i++)
                cr_assert_null(g_thread_join(threads[i]));
}
