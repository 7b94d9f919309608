/* test-profile.c - the profile loader: the shipped default, good site
 * profiles, and bad ones refused with file, line and reason. */
#include "profile.h"
#include "profile-default.h"
#include "test-util.h"

static const char profile_good[] =
        "# a comment\n"
        "[profile]\n"
        "name = Site\n"
        "[layout]\n"
        "folders=ATT;CAL;FOLDERS;GLB;GRP;HLP;INF;INI;KEY;LOG;MAI;MBG;MEM;MMF;NME;P1;TPL;USR;XTN\n"
        "message-subfolders=MA\n"
        "attachment-subfolders=AT\n"
        "marker=POPULATE.MSM\n"
        "[queues]\n"
        "names=INQUEUE3;INQUEUE;SYSTEM;smtpgate\n"
        "[locks]\n"
        "folder=P1\n"
        "session-extensions=0LK;OLK\n"
        "v20-extensions=0NN\n"
        "[exclusive]\n"
        "files=GLB/CONTROL.GLB;glb/tid.glb\n";

/* @profile_good with the line that starts with @prefix replaced by
 * @replacement (NULL: deleted). */
static char *profile_variant(const char *prefix, const char *replacement)
{
        g_auto(GStrv) lines = g_strsplit(profile_good, "\n", -1);
        g_autoptr(GString) out = g_string_new(NULL);
        bool found = false;
        for (gsize i = 0; lines[i]; i++) {
                if (!found && g_str_has_prefix(lines[i], prefix)) {
                        found = true;
                        if (replacement)
                                g_string_append_printf(out, "%s\n", replacement);
                        continue;
                }
                if (lines[i][0] || lines[i + 1])
                        g_string_append_printf(out, "%s\n", lines[i]);
        }
        cr_assert(found, "no line starts with %s", prefix);
        return g_string_free(g_steal_pointer(&out), FALSE);
}

static void profile_expect_error(const char *text, const char *expected)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(PoProfile) profile = po_profile_load_data(text, strlen(text), "site.profile", &error);
        cr_assert_null(profile, "accepted a bad profile (expected \"%s\")", expected);
        cr_assert_not_null(error);
        cr_assert(error->domain == PO_PROFILE_ERROR);
        cr_assert(strstr(error->message, expected) != NULL, "message \"%s\" lacks \"%s\"",
                  error->message, expected);
        cr_assert(g_str_has_prefix(error->message, "site.profile"), "%s", error->message);
}

Test(profile, default_is_microsoft_mail_3)
{
        g_autoptr(PoProfile) profile = po_profile_new_default();
        cr_assert_not_null(profile);
        cr_assert_str_eq(po_profile_name(profile), "Microsoft Mail 3.x");
        cr_assert_eq(g_strv_length((char **)po_profile_folders(profile)), 19);
        cr_assert_str_eq(po_profile_marker(profile), "POPULATE.MSM");
        cr_assert_str_eq(po_profile_message_subfolder_prefix(profile), "MA");
        cr_assert_str_eq(po_profile_attachment_subfolder_prefix(profile), "AT");
        cr_assert_str_eq(po_profile_lock_folder(profile), "P1");
        cr_assert(po_profile_is_queue(profile, "inqueue3"));
        cr_assert(po_profile_is_queue(profile, "SYSTEM"));
        cr_assert_not(po_profile_is_queue(profile, "0000001A"));
        cr_assert_eq(g_strv_length((char **)po_profile_session_extensions(profile)), 2);
        cr_assert_str_eq(po_profile_v20_extensions(profile)[0], "0NN");
        cr_assert_eq(g_strv_length((char **)po_profile_exclusive_files(profile)), 4);
}

/* The compiled-in text is the shipped file, byte for byte, and the file
 * loads by path as a site would load it with -o profile=PATH. */
Test(profile, shipped_file_is_the_embedded_default)
{
        const char *path = g_getenv("PO_DEFAULT_PROFILE");
        cr_assert_not_null(path, "PO_DEFAULT_PROFILE not set by the test runner");
        g_autofree char *text = NULL;
        gsize len = 0;
        cr_assert(g_file_get_contents(path, &text, &len, NULL));
        cr_assert_eq(len, po_profile_default_len);
        cr_assert(memcmp(text, po_profile_default_text, len) == 0);
        g_autoptr(GError) error = NULL;
        g_autoptr(PoProfile) profile = po_profile_load(path, &error);
        cr_assert_not_null(profile, "%s", error ? error->message : "");
        cr_assert_str_eq(po_profile_name(profile), "Microsoft Mail 3.x");
}

Test(profile, site_profile_adds_a_queue_and_upper_cases)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(PoProfile) profile = po_profile_load_data(profile_good, strlen(profile_good),
                                                            "site.profile", &error);
        cr_assert_not_null(profile, "%s", error ? error->message : "");
        cr_assert_str_eq(po_profile_name(profile), "Site");
        cr_assert(po_profile_is_queue(profile, "SMTPGATE"));
        cr_assert_str_eq(po_profile_queues(profile)[3], "SMTPGATE");
        cr_assert_str_eq(po_profile_exclusive_files(profile)[1], "GLB/TID.GLB");
        PoClass class;
        po_classify(profile, "p1/smtpgate.olk", &class);
        cr_assert_eq(class.role, PO_ROLE_SESSION_LOCK);
        cr_assert(class.is_queue);
        po_classify(profile, "GLB/FLAG.GLB", &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
}

Test(profile, v20_may_be_empty)
{
        g_autofree char *text = profile_variant("v20-extensions", "v20-extensions=");
        g_autoptr(GError) error = NULL;
        g_autoptr(PoProfile) profile = po_profile_load_data(text, strlen(text), "site.profile", &error);
        cr_assert_not_null(profile, "%s", error ? error->message : "");
        PoClass class;
        po_classify(profile, "P1/INQUEUE3.001", &class);
        cr_assert_eq(class.role, PO_ROLE_OTHER);
}

typedef struct {
        const char *prefix;
        const char *replacement;
        const char *expected;
} ProfileBadCase;

static const ProfileBadCase profile_bad_cases[] = {
        { "marker", "markre=POPULATE.MSM", ":8: unknown key 'markre' in group [layout]" },
        { "[queues]", "[queue]", ":9: unknown group [queue]" },
        { "name", "name=A\nname=B", ":4: key 'name' appears twice in group [profile]" },
        { "[exclusive]", "[profile]", ":15: group [profile] appears twice" },
        { "marker", "marker POPULATE.MSM", ":8: expected key=value" },
        { "[layout]", "[layout", ":4: expected a group name" },
        { "# a comment", "stray=1", ":1: key 'stray' before any group" },
        { "marker", NULL, "missing key 'marker' in group [layout]" },
        { "name", NULL, ":2: missing key 'name' in group [profile]" },
        { "name", "name=", ":3: name is empty" },
        { "names", "names=INQUEUE33", ":10: 'INQUEUE33' in names is not a mailbag name" },
        { "names", "names=", ":10: names needs at least one entry" },
        { "names", "names=INQUEUE3;inqueue3", ":10: 'INQUEUE3' is listed twice" },
        { "folders", "folders=ATT;GLB;KEY;MAI;MBG", ":5: folders must include P1" },
        { "folder=", "folder=XTN2", ":12: lock folder 'XTN2' is not in [layout] folders" },
        { "session-extensions", "session-extensions=0LK;P1", ":13: P1 is the envelope extension" },
        { "session-extensions", "session-extensions=0LKX", "is not a 1-3 character extension" },
        { "session-extensions", "session-extensions=", "session-extensions needs at least one entry" },
        { "v20-extensions", "v20-extensions=001", ":14: '001' in v20-extensions is not a 1-3 character pattern" },
        { "files", "files=ETC/CONTROL.GLB", ":16: 'ETC/CONTROL.GLB' is not in a folder" },
        { "files", "files=CONTROL.GLB", "is not FOLDER/NAME.EXT" },
        { "message-subfolders", "message-subfolders=MAIMAIMA", ":6: message-subfolders must be 1-7" },
        { "marker", "marker=POPULATE.MSMX", ":8: marker 'POPULATE.MSMX' is not an 8.3 file name" },
        { "name", "name[fr]=Poste", ":3: unknown key 'name[fr]'" },
};

Test(profile, bad_profiles_are_refused_with_line)
{
        for (gsize i = 0; i < G_N_ELEMENTS(profile_bad_cases); i++) {
                const ProfileBadCase *c = &profile_bad_cases[i];
                g_autofree char *text = profile_variant(c->prefix, c->replacement);
                profile_expect_error(text, c->expected);
        }
}

Test(profile, nul_byte_and_garbage_are_refused)
{
        g_autoptr(GError) error = NULL;
        static const char with_nul[] = "[profile]\nname=a\0b\n";
        cr_assert_null(po_profile_load_data(with_nul, sizeof with_nul - 1, "nul.profile", &error));
        cr_assert(strstr(error->message, "NUL") != NULL);
        g_clear_error(&error);
        cr_assert_null(po_profile_load_data("", 0, "empty.profile", &error));
        cr_assert(strstr(error->message, "missing group [profile]") != NULL, "%s", error->message);
}

Test(profile, missing_file_names_the_path)
{
        g_autoptr(GError) error = NULL;
        cr_assert_null(po_profile_load("/nonexistent/site.profile", &error));
        cr_assert(strstr(error->message, "/nonexistent/site.profile") != NULL, "%s", error->message);
}

/* Random damage to the shipped text: every outcome is a profile or an
 * error, never a crash (the fuzzer goes further). */
Test(profile, random_damage_never_crashes)
{
        TestRandom random = { 1996 };
        for (int i = 0; i < 3000; i++) {
                g_autofree char *text = g_memdup2(po_profile_default_text, po_profile_default_len);
                gsize len = po_profile_default_len;
                int edits = 1 + test_random_next(&random) % 4;
                for (int e = 0; e < edits; e++)
                        text[test_random_next(&random) % len] = (char)test_random_next(&random);
                if (test_random_next(&random) % 3 == 0)
                        len = test_random_next(&random) % len;
                g_autoptr(GError) error = NULL;
                g_autoptr(PoProfile) profile = po_profile_load_data(text, len, "random", &error);
                cr_assert((profile == NULL) == (error != NULL));
        }
}

static void expect_path(char *built, const char *expected)
{
        g_autofree char *path = built;
        cr_assert_str_eq(path, expected);
}

Test(profile, paths_follow_the_kb_examples)
{
        g_autoptr(PoProfile) profile = po_profile_new_default();
        /* Q103960: "MAI\MAE\0009DF5E.MAI" */
        expect_path(po_profile_message_path(profile, 0x0009DF5E), "MAI/MAE/0009DF5E.MAI");
        expect_path(po_profile_message_path(profile, UINT32_MAX), "MAI/MAF/FFFFFFFF.MAI");
        expect_path(po_profile_message_folder(profile, 0xE), "MAI/MAE");
        expect_path(po_profile_envelope_path(profile, 0xE), "P1/0000000E.P1");
        expect_path(po_profile_attachment_path(profile, 0x12345670), "ATT/AT0/12345670.ATT");
        expect_path(po_profile_attachment_folder(profile, 0x12345670), "ATT/AT0");
        expect_path(po_profile_key_path(profile, "INQUEUE3"), "KEY/INQUEUE3.KEY");
        expect_path(po_profile_mbg_path(profile, "0000001A"), "MBG/0000001A.MBG");
        expect_path(po_profile_session_lock_path(profile, "INQUEUE3", "0LK"), "P1/INQUEUE3.0LK");
        expect_path(po_profile_session_lock_path(profile, "INQUEUE3", "097"), "P1/INQUEUE3.097");
}

/* Every builder's path is what po_classify() recognises, for the default
 * profile and for one with other prefixes and another lock folder. */
Test(profile, paths_come_from_the_profile_and_classify_back)
{
        g_autofree char *step1 = profile_variant("message-subfolders=", "message-subfolders=mx");
        GString *text = g_string_new(step1);
        g_string_replace(text, "attachment-subfolders=AT", "attachment-subfolders=AXQ", 1);
        g_string_replace(text, "[locks]\nfolder=P1", "[locks]\nfolder=LOG", 1);
        g_autofree char *step2 = g_string_free(text, FALSE);
        g_autoptr(GError) error = NULL;
        g_autoptr(PoProfile) site = po_profile_load_data(step2, strlen(step2), "site", &error);
        cr_assert_not_null(site, "%s", error ? error->message : "");
        expect_path(po_profile_message_path(site, 0x0009DF5E), "MAI/MXE/0009DF5E.MAI");
        expect_path(po_profile_message_folder(site, 3), "MAI/MX3");
        expect_path(po_profile_attachment_path(site, 0x21), "ATT/AXQ1/00000021.ATT");
        expect_path(po_profile_session_lock_path(site, "INQUEUE3", "0LK"), "LOG/INQUEUE3.0LK");
        expect_path(po_profile_envelope_path(site, 0x21), "P1/00000021.P1");

        g_autoptr(PoProfile) standard = po_profile_new_default();
        const PoProfile *profiles[] = { standard, site };
        for (gsize i = 0; i < G_N_ELEMENTS(profiles); i++) {
                const PoProfile *profile = profiles[i];
                for (uint32_t n = 0; n < 40; n += 7) {
                        PoClass class;
                        g_autofree char *mai = po_profile_message_path(profile, n);
                        po_classify(profile, mai, &class);
                        cr_assert_eq(class.role, PO_ROLE_MESSAGE, "%s", mai);
                        cr_assert_eq(class.message_number, n);
                        g_autofree char *att = po_profile_attachment_path(profile, n);
                        po_classify(profile, att, &class);
                        cr_assert_eq(class.role, PO_ROLE_ATTACHMENT, "%s", att);
                        g_autofree char *p1 = po_profile_envelope_path(profile, n);
                        po_classify(profile, p1, &class);
                        cr_assert_eq(class.role, PO_ROLE_ENVELOPE, "%s", p1);
                }
                g_autofree char *key = po_profile_key_path(profile, "SMTPGATE");
                PoClass class;
                po_classify(profile, key, &class);
                cr_assert_eq(class.role, PO_ROLE_MAILBAG_KEY, "%s", key);
                cr_assert_str_eq(class.name, "SMTPGATE");
                g_autofree char *mbg = po_profile_mbg_path(profile, "SMTPGATE");
                po_classify(profile, mbg, &class);
                cr_assert_eq(class.role, PO_ROLE_MAILBAG_MBG, "%s", mbg);
                g_autofree char *lock = po_profile_session_lock_path(profile, "INQUEUE3", "0LK");
                po_classify(profile, lock, &class);
                cr_assert_eq(class.role, PO_ROLE_SESSION_LOCK, "%s", lock);
                cr_assert_eq(class.lock_protocol, PO_LOCK_PROTOCOL_SESSION_FILE);
        }
}
