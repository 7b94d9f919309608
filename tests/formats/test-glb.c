/* test-glb.c - CONTROL.GLB, ACCESS*.GLB, .NME and the GLB size table. */
#include "glb.h"
#include "po-error.h"
#include "test-util.h"

TestSuite(glb, .init = test_scratch_setup, .fini = test_scratch_teardown);

#include <fcntl.h>
#include <unistd.h>

Test(glb, control_round_trip_and_take)
{
        PoControl in = { .next_mailbag = 0x1B, .next_message = 0x0009DF5F }, out;
        uint8_t buf[PO_GLB_CONTROL_SIZE];
        po_glb_control_write(buf, &in);
        /* Little-endian u32 at 0 and 4 (D, Q99204). */
        cr_assert_eq(buf[0], 0x1B);
        cr_assert_eq(buf[4], 0x5F);
        cr_assert_eq(buf[6], 0x09);
        cr_assert(po_glb_control_parse(buf, sizeof buf, "CONTROL.GLB", &out, NULL));
        cr_assert_eq(out.next_mailbag, in.next_mailbag);
        cr_assert_eq(out.next_message, in.next_message);
        uint32_t number;
        cr_assert(po_glb_control_take_message_number(buf, sizeof buf, "C", &number, NULL));
        cr_assert_eq(number, 0x0009DF5F);
        cr_assert(po_glb_control_take_message_number(buf, sizeof buf, "C", &number, NULL));
        cr_assert_eq(number, 0x0009DF60);
        cr_assert(po_glb_control_take_mailbag_number(buf, sizeof buf, "C", &number, NULL));
        cr_assert_eq(number, 0x1B);
        po_glb_control_parse(buf, sizeof buf, "C", &out, NULL);
        cr_assert_eq(out.next_message, 0x0009DF61);
        cr_assert_eq(out.next_mailbag, 0x1C);
}

Test(glb, control_refuses_wrong_size_and_wrap)
{
        uint8_t buf[16] = { 0 };
        for (gsize len = 0; len < sizeof buf; len++) {
                if (len == PO_GLB_CONTROL_SIZE)
                        continue;
                g_autoptr(GError) error = NULL;
                PoControl out;
                cr_assert_not(po_glb_control_parse(buf, len, "GLB/CONTROL.GLB", &out, &error));
                cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT));
                cr_assert(g_str_has_prefix(error->message, "GLB/CONTROL.GLB: offset 0x"), "%s",
                          error->message);
                cr_assert(strstr(error->message, "expected an 8-byte CONTROL.GLB") != NULL);
        }
        PoControl max = { .next_mailbag = 1, .next_message = UINT32_MAX };
        po_glb_control_write(buf, &max);
        uint32_t number = 0;
        g_autoptr(GError) error = NULL;
        cr_assert_not(po_glb_control_take_message_number(buf, 8, "C", &number, &error));
        cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE));
}

Test(glb, control_take_on_a_file)
{
        const char *root = test_scratch;
        g_autofree char *path = g_build_filename(root, "CONTROL.GLB", NULL);
        PoControl control = { 1, 41 };
        uint8_t buf[PO_GLB_CONTROL_SIZE];
        po_glb_control_write(buf, &control);
        test_write_file(path, buf, sizeof buf);
        int fd = open(path, O_RDWR);
        uint32_t number;
        cr_assert(po_glb_control_take_message_number_fd(fd, path, &number, NULL));
        cr_assert_eq(number, 41);
        cr_assert(po_glb_control_take_message_number_fd(fd, path, &number, NULL));
        cr_assert_eq(number, 42);
        cr_assert(ftruncate(fd, 4) == 0);
        g_autoptr(GError) error = NULL;
        cr_assert_not(po_glb_control_take_message_number_fd(fd, path, &number, &error));
        cr_assert(strstr(error->message, "CONTROL.GLB: offset 0x4") != NULL, "%s", error->message);
        close(fd);
}

static uint8_t *glb_access_with(unsigned users, const char *const *aliases)
{
        uint8_t *access = g_malloc0((gsize)users * PO_GLB_ACCESS_RECORD_SIZE);
        for (unsigned u = 0; u < users; u++)
                po_glb_access_record_init(access + (gsize)u * PO_GLB_ACCESS_RECORD_SIZE, aliases[u]);
        return access;
}

Test(glb, access_arrays_agree_and_aliases_print)
{
        const char *const aliases[] = { "admin", "USER00001", "", "ABCDEFGHIJKL" };
        g_autofree uint8_t *access = glb_access_with(4, aliases);
        gsize len = 4 * PO_GLB_ACCESS_RECORD_SIZE;
        unsigned users = 0;
        g_autoptr(GError) error = NULL;
        cr_assert(po_glb_access_check(access, len, 4 * 69, 4 * 512, &users, &error), "%s",
                  error ? error->message : "");
        cr_assert_eq(users, 4);
        char alias[PO_GLB_ACCESS_ALIAS_SIZE + 1];
        cr_assert_eq(po_glb_access_alias(access, len, 0, alias, NULL), PO_GLB_ALIAS_OK);
        cr_assert_str_eq(alias, "ADMIN");
        cr_assert_eq(po_glb_access_alias(access, len, 2, alias, NULL), PO_GLB_ALIAS_EMPTY);
        cr_assert_eq(po_glb_access_alias(access, len, 3, alias, NULL), PO_GLB_ALIAS_OK);
        cr_assert_str_eq(alias, "ABCDEFGHIJ"); /* cut at 10 (inferred size) */
        cr_assert_eq(po_glb_access_alias(access, len, 4, alias, NULL), PO_GLB_ALIAS_EMPTY);
}

Test(glb, access_count_mismatch_names_the_short_file)
{
        const char *const aliases[] = { "A", "B", "C" };
        g_autofree uint8_t *access = glb_access_with(3, aliases);
        g_autoptr(GError) error = NULL;
        cr_assert_not(po_glb_access_check(access, 3 * 586, 2 * 69, 3 * 512, NULL, &error));
        cr_assert(g_str_has_prefix(error->message, "ACCESS2.GLB: offset 0x8a: expected 3 records"),
                  "%s", error->message);
        g_clear_error(&error);
        cr_assert_not(po_glb_access_check(access, 3 * 586, 3 * 69, 3 * 512 + 1, NULL, &error));
        cr_assert(g_str_has_prefix(error->message, "ACCESS3.GLB: offset 0x600: expected whole 512-byte"),
                  "%s", error->message);
}

Test(glb, unprintable_alias_is_the_listuser_sign)
{
        const char *const aliases[] = { "GOOD", "BAD" };
        g_autofree uint8_t *access = glb_access_with(2, aliases);
        access[PO_GLB_ACCESS_RECORD_SIZE + 1] = 0x9F;
        char alias[PO_GLB_ACCESS_ALIAS_SIZE + 1];
        gsize bad = 0;
        cr_assert_eq(po_glb_access_alias(access, 2 * 586, 1, alias, &bad), PO_GLB_ALIAS_UNPRINTABLE);
        cr_assert_str_eq(alias, "B?D");
        cr_assert_eq(bad, PO_GLB_ACCESS_RECORD_SIZE + 1);
        g_autoptr(GError) error = NULL;
        cr_assert_not(po_glb_access_check(access, 2 * 586, 2 * 69, 2 * 512, NULL, &error));
        cr_assert(g_str_has_prefix(error->message, "ACCESS.GLB: offset 0x24b: expected a printable alias"),
                  "%s", error->message);
}

Test(glb, nme_round_trip_and_truncation)
{
        uint8_t buf[3 * PO_GLB_NME_RECORD_SIZE];
        for (unsigned i = 0; i < 3; i++) {
                PoNmeEntry entry = { .tid = 1000 + i, .type = i == 1 ? PO_GLB_NME_TYPE_GROUP
                                                                     : PO_GLB_NME_TYPE_EXTERNAL,
                                     .offset = 45 * i };
                g_snprintf(entry.alias, sizeof entry.alias, "ALIAS%u", i);
                po_glb_nme_entry_write(buf + i * PO_GLB_NME_RECORD_SIZE, &entry);
        }
        unsigned count;
        cr_assert(po_glb_nme_count(sizeof buf, "ADMIN.NME", &count, NULL));
        cr_assert_eq(count, 3);
        PoNmeEntry out;
        cr_assert(po_glb_nme_entry(buf, sizeof buf, 1, &out, NULL));
        cr_assert_str_eq(out.alias, "ALIAS1");
        cr_assert_eq(out.tid, 1001);
        cr_assert_eq(out.type, PO_GLB_NME_TYPE_GROUP);
        cr_assert_eq(out.offset, 45);
        g_autoptr(GError) error = NULL;
        cr_assert_not(po_glb_nme_entry(buf, sizeof buf - 1, 2, &out, &error));
        g_clear_error(&error);
        cr_assert_not(po_glb_nme_count(sizeof buf - 1, "NME/ADMIN.NME", &count, &error));
        cr_assert(g_str_has_prefix(error->message, "NME/ADMIN.NME: offset 0x5a: expected whole 45-byte"),
                  "%s", error->message);
}

Test(glb, size_table)
{
        struct {
                const char *name;
                gsize size;
                bool ok;
        } cases[] = {
                { "CONTROL.GLB", 8, true }, { "control.glb", 9, false }, { "FLAG.GLB", 2, true },
                { "GLOBAL.GLB", 512, true }, { "MASTER.GLB", 176, true }, { "MASTER.GLB", 175, false },
                { "TID.GLB", 4, true }, { "NETPO.GLB", 4 + 43 * 3, true }, { "NETPO.GLB", 3, false },
                { "GROUP.GLB", 4 + 51, true }, { "GROUP.GLB", 4 + 50, false },
                { "NETWORK.GLB", 0, true }, { "NETWORK.GLB", 244, true }, { "NETWORK.GLB", 245, false },
                { "ACCESS2.GLB", 69 * 7, true }, { "OTHER.GLB", 12345, true },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                bool ok = po_glb_check_size(cases[i].name, cases[i].size, cases[i].name, &error);
                cr_assert_eq(ok, cases[i].ok, "%s %zu", cases[i].name, cases[i].size);
                if (!ok)
                        cr_assert(strstr(error->message, "offset 0x") != NULL);
        }
        cr_assert_eq(po_glb_fresh_size("MASTER.GLB"), 176);
        cr_assert_eq(po_glb_fresh_size("NETPO.GLB"), 4);
        cr_assert_eq(po_glb_fresh_size("NETWORK.GLB"), 0);
        cr_assert_eq(po_glb_fresh_size("NOSUCH.GLB"), -1);
}

Test(glb, random_bytes_never_crash)
{
        TestRandom random = { 5 };
        uint8_t buf[4096];
        for (int i = 0; i < 5000; i++) {
                gsize len = test_random_next(&random) % sizeof buf;
                test_random_fill(&random, buf, len);
                PoControl control;
                po_glb_control_parse(buf, len, "C", &control, NULL);
                unsigned n_users = 0, count = 0;
                if (po_glb_access_check(buf, len, len / 586 * 69, len / 586 * 512, &n_users, NULL))
                        cr_assert_eq(n_users, len / 586);
                char alias[PO_GLB_ACCESS_ALIAS_SIZE + 1];
                for (unsigned u = 0; u < 8; u++) {
                        po_glb_access_alias(buf, len, u, alias, NULL);
                        cr_assert(strlen(alias) <= PO_GLB_ACCESS_ALIAS_SIZE);
                }
                if (po_glb_nme_count(len, "N", &count, NULL)) {
                        PoNmeEntry entry;
                        for (unsigned e = 0; e <= count; e++)
                                cr_assert_eq(po_glb_nme_entry(buf, len, e, &entry, NULL), e < count);
                }
                po_glb_check_size("NETPO.GLB", len, "N", NULL);
        }
}
