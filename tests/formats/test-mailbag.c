/* test-mailbag.c - .KEY bitmap, .MBG records, append/delete/iterate, file
 * helpers, and truncated, oversized and random input. */
#include "mailbag.h"
#include "po-error.h"
#include "test-util.h"

TestSuite(mailbag, .init = test_scratch_setup, .fini = test_scratch_teardown);

#include <fcntl.h>
#include <unistd.h>

static void mailbag_make_record(uint32_t number, uint8_t record[PO_MAILBAG_RECORD_SIZE])
{
        PoRecord fields = { .minute = 5, .hour = 14, .day = 3, .month = 7, .year = 1996,
                            .has_message_number = true, .message_number = number };
        g_strlcpy(fields.sender, "ADMIN", sizeof fields.sender);
        g_snprintf(fields.subject, sizeof fields.subject, "Subject %u", number);
        memset(record, 0, PO_MAILBAG_RECORD_SIZE);
        po_record_encode(record, &fields);
}

static uint32_t mailbag_record_number(const uint8_t *record)
{
        PoRecord fields;
        po_record_decode(record, &fields);
        cr_assert(fields.has_message_number);
        return fields.message_number;
}

Test(mailbag, record_round_trip_keeps_unknown_bytes)
{
        uint8_t record[PO_MAILBAG_RECORD_SIZE];
        memset(record, 0x5A, sizeof record);
        PoRecord in = { .minute = 59, .hour = 23, .day = 31, .month = 12, .year = 1999,
                        .has_message_number = true, .message_number = 0x0009DF5E };
        g_strlcpy(in.sender, "ABCDEFGHIJK", sizeof in.sender); /* exactly 11 */
        memset(in.subject, 'S', PO_RECORD_SUBJECT_SIZE);
        in.subject[PO_RECORD_SUBJECT_SIZE] = '\0';
        po_record_encode(record, &in);
        PoRecord out;
        po_record_decode(record, &out);
        cr_assert_str_eq(out.sender, "ABCDEFGHIJK");
        cr_assert_eq(strlen(out.subject), PO_RECORD_SUBJECT_SIZE);
        cr_assert_eq(out.minute, 59);
        cr_assert_eq(out.hour, 23);
        cr_assert_eq(out.day, 31);
        cr_assert_eq(out.month, 12);
        cr_assert_eq(out.year, 1999);
        cr_assert_str_eq(out.mai_name, "0009DF5E");
        cr_assert(out.has_message_number);
        cr_assert_eq(out.message_number, 0x0009DF5E);
        /* Bytes outside the known fields, the checksum included, untouched. */
        cr_assert_eq(record[0], 0x5A);
        cr_assert_eq(record[1], 0x5A);
        cr_assert_eq(record[0x42], 0x5A);
        for (gsize i = PO_RECORD_MAI_OFFSET + PO_RECORD_MAI_SIZE; i < PO_MAILBAG_RECORD_SIZE; i++)
                cr_assert_eq(record[i], 0x5A, "byte 0x%zx changed", i);
        /* Little-endian date words at 0x38 (inferred, Q108027). */
        cr_assert_eq(record[0x38], 59);
        cr_assert_eq(record[0x40], 1999 & 0xFF);
        cr_assert_eq(record[0x41], 1999 >> 8);
}

Test(mailbag, decode_never_fails_on_odd_bytes)
{
        TestRandom random = { 3 };
        for (int i = 0; i < 5000; i++) {
                uint8_t record[PO_MAILBAG_RECORD_SIZE];
                test_random_fill(&random, record, sizeof record);
                PoRecord out;
                po_record_decode(record, &out);
                cr_assert(strlen(out.sender) <= PO_RECORD_SENDER_SIZE);
                cr_assert(strlen(out.subject) <= PO_RECORD_SUBJECT_SIZE);
                cr_assert(strlen(out.mai_name) <= 8);
        }
}

Test(mailbag, bitmap_is_msb_first_after_the_header)
{
        uint8_t key[PO_MAILBAG_KEY_SIZE] = { 0 };
        po_mailbag_key_set_slot_free(key, 0, true);
        cr_assert_eq(key[48], 0x80);
        po_mailbag_key_set_slot_free(key, 9, true);
        cr_assert_eq(key[49], 0x40);
        po_mailbag_key_set_slot_free(key, 4095, true);
        cr_assert_eq(key[559], 0x01);
        cr_assert(po_mailbag_key_slot_is_free(key, 4095));
        po_mailbag_key_set_slot_free(key, 4096, true); /* out of range: ignored */
        cr_assert_not(po_mailbag_key_slot_is_free(key, 4096));
        cr_assert_eq(po_mailbag_key_first_free(key, 5), 0);
        po_mailbag_key_set_slot_free(key, 0, false);
        cr_assert_eq(key[48], 0);
        cr_assert_eq(po_mailbag_key_first_free(key, 9), -1);
        cr_assert_eq(po_mailbag_key_first_free(key, 10), 9);
        PoMailbagStats stats;
        po_mailbag_key_stats(key, 10, &stats);
        cr_assert_eq(stats.total, 10);
        cr_assert_eq(stats.free, 1);
        cr_assert_eq(stats.live, 9);
        cr_assert_eq(stats.free_beyond_total, 1);
}

Test(mailbag, append_delete_reuse_and_iterate)
{
        g_autoptr(PoMailbag) mailbag = po_mailbag_new();
        uint8_t record[PO_MAILBAG_RECORD_SIZE];
        for (uint32_t n = 1; n <= 40; n++) {
                mailbag_make_record(n, record);
                cr_assert_eq(po_mailbag_append(mailbag, record, NULL), (int)n - 1);
        }
        cr_assert(po_mailbag_delete(mailbag, 3, NULL));
        cr_assert(po_mailbag_delete(mailbag, 17, NULL));
        g_autoptr(GError) error = NULL;
        cr_assert_not(po_mailbag_delete(mailbag, 3, &error));
        cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_RANGE));
        g_clear_error(&error);
        cr_assert_not(po_mailbag_delete(mailbag, 40, &error));
        /* The deleted record's bytes stay (Q146113). */
        cr_assert_eq(mailbag_record_number(po_mailbag_record(mailbag, 3)), 4);
        PoMailbagStats stats;
        po_mailbag_stats(mailbag, &stats);
        cr_assert_eq(stats.total, 40);
        cr_assert_eq(stats.live, 38);
        cr_assert_eq(stats.free, 2);
        int seen = 0;
        for (int s = po_mailbag_next_live(mailbag, -1); s >= 0; s = po_mailbag_next_live(mailbag, s)) {
                cr_assert(s != 3 && s != 17);
                cr_assert_eq(mailbag_record_number(po_mailbag_record(mailbag, s)), (uint32_t)s + 1);
                seen++;
        }
        cr_assert_eq(seen, 38);
        mailbag_make_record(100, record);
        cr_assert_eq(po_mailbag_append(mailbag, record, NULL), 3);
        cr_assert_eq(po_mailbag_append(mailbag, record, NULL), 17);
        cr_assert_eq(po_mailbag_append(mailbag, record, NULL), 40);
        cr_assert_null(po_mailbag_record(mailbag, 41));
}

Test(mailbag, full_at_4096_with_its_own_error)
{
        g_autoptr(PoMailbag) mailbag = po_mailbag_new();
        uint8_t record[PO_MAILBAG_RECORD_SIZE];
        for (unsigned n = 0; n < PO_MAILBAG_MAX_RECORDS; n++) {
                mailbag_make_record(n, record);
                cr_assert_eq(po_mailbag_append(mailbag, record, NULL), (int)n);
        }
        g_autoptr(GError) error = NULL;
        cr_assert_eq(po_mailbag_append(mailbag, record, &error), -1);
        cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_FULL));
        cr_assert(strstr(error->message, "mailbag full") != NULL);
        PoMailbagStats stats;
        po_mailbag_stats(mailbag, &stats);
        cr_assert_eq(stats.percent, 100);
        cr_assert(po_mailbag_delete(mailbag, 2048, NULL));
        cr_assert_eq(po_mailbag_append(mailbag, record, NULL), 2048);
}

Test(mailbag, parse_refuses_wrong_sizes_naming_file_and_offset)
{
        uint8_t key[PO_MAILBAG_KEY_SIZE + 1] = { 0 };
        g_autofree uint8_t *mbg = g_malloc0(PO_MAILBAG_MBG_MAX_SIZE + PO_MAILBAG_RECORD_SIZE);
        struct {
                gsize key_len, mbg_len;
                const char *expected;
        } cases[] = {
                { 559, 0, "KEY/X.KEY: offset 0x22f: expected a 560-byte .KEY file, found 559" },
                { 0, 0, "KEY/X.KEY: offset 0x0: expected a 560-byte" },
                { 561, 0, "KEY/X.KEY: offset 0x230: expected a 560-byte .KEY file, found 561" },
                { 560, 117, "MBG/X.MBG: offset 0x74: expected a whole 116-byte record, found 1 bytes" },
                { 560, 115, "MBG/X.MBG: offset 0x0: expected a whole 116-byte record" },
                { 560, PO_MAILBAG_MBG_MAX_SIZE + PO_MAILBAG_RECORD_SIZE,
                  "MBG/X.MBG: offset 0x74000: expected at most 4096 records" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(PoMailbag) mailbag = po_mailbag_parse(key, cases[i].key_len, mbg,
                                                                cases[i].mbg_len, "KEY/X.KEY",
                                                                "MBG/X.MBG", &error);
                cr_assert_null(mailbag);
                cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT));
                cr_assert(g_str_has_prefix(error->message, cases[i].expected), "%s", error->message);
        }
        g_autoptr(PoMailbag) full = po_mailbag_parse(key, 560, mbg, PO_MAILBAG_MBG_MAX_SIZE,
                                                     "K", "M", NULL);
        cr_assert_not_null(full);
        cr_assert_eq(full->total, 4096);
}

Test(mailbag, random_buffers_parse_or_fail_cleanly)
{
        TestRandom random = { 11 };
        g_autofree uint8_t *buf = g_malloc(PO_MAILBAG_MBG_MAX_SIZE + 200);
        uint8_t record[PO_MAILBAG_RECORD_SIZE] = { 0 };
        for (int i = 0; i < 300; i++) {
                uint8_t key[PO_MAILBAG_KEY_SIZE + 8];
                test_random_fill(&random, key, sizeof key);
                gsize key_len = i % 3 ? PO_MAILBAG_KEY_SIZE : test_random_next(&random) % sizeof key;
                gsize mbg_len = test_random_next(&random) % 8 == 0
                                        ? test_random_next(&random) % (PO_MAILBAG_MBG_MAX_SIZE + 200)
                                        : (test_random_next(&random) % 300) * PO_MAILBAG_RECORD_SIZE;
                test_random_fill(&random, buf, MIN(mbg_len, (gsize)4096));
                g_autoptr(GError) error = NULL;
                g_autoptr(PoMailbag) mailbag = po_mailbag_parse(key, key_len, buf, mbg_len, "K", "M", &error);
                cr_assert((mailbag == NULL) == (error != NULL));
                if (mailbag == NULL)
                        continue;
                PoMailbagStats stats;
                po_mailbag_stats(mailbag, &stats);
                cr_assert_eq(stats.live + stats.free, stats.total);
                int live = 0;
                for (int s = po_mailbag_next_live(mailbag, -1); s >= 0; s = po_mailbag_next_live(mailbag, s))
                        live++;
                cr_assert_eq((unsigned)live, stats.live);
                int slot = po_mailbag_append(mailbag, record, NULL);
                cr_assert(slot >= -1 && slot <= (int)stats.total);
        }
}

Test(mailbag, files_round_trip_and_fd_delivery)
{
        const char *root = test_scratch;
        g_autofree char *key_dir = g_build_filename(root, "KEY", NULL);
        g_autofree char *mbg_dir = g_build_filename(root, "MBG", NULL);
        g_mkdir(key_dir, 0755);
        g_mkdir(mbg_dir, 0755);
        g_autoptr(PoMailbag) mailbag = po_mailbag_new();
        uint8_t record[PO_MAILBAG_RECORD_SIZE];
        for (uint32_t n = 1; n <= 5; n++) {
                mailbag_make_record(n, record);
                po_mailbag_append(mailbag, record, NULL);
        }
        mailbag->key[0] = 0x77; /* header bytes survive a round trip */
        po_mailbag_delete(mailbag, 1, NULL);
        g_autoptr(GError) error = NULL;
        cr_assert(po_mailbag_save(mailbag, root, "INQUEUE3", &error), "%s", error ? error->message : "");
        g_autoptr(PoMailbag) loaded = po_mailbag_load(root, "INQUEUE3", &error);
        cr_assert_not_null(loaded, "%s", error ? error->message : "");
        cr_assert_eq(loaded->total, 5);
        cr_assert(memcmp(loaded->key, mailbag->key, PO_MAILBAG_KEY_SIZE) == 0);
        cr_assert(memcmp(loaded->records, mailbag->records, 5 * PO_MAILBAG_RECORD_SIZE) == 0);

        g_autofree char *key_path = g_build_filename(key_dir, "INQUEUE3.KEY", NULL);
        g_autofree char *mbg_path = g_build_filename(mbg_dir, "INQUEUE3.MBG", NULL);
        int key_fd = open(key_path, O_RDWR);
        int mbg_fd = open(mbg_path, O_RDWR);
        mailbag_make_record(9, record);
        cr_assert_eq(po_mailbag_append_fds(key_fd, mbg_fd, record, "K", "M", NULL), 1);
        cr_assert_eq(po_mailbag_append_fds(key_fd, mbg_fd, record, "K", "M", NULL), 5);
        cr_assert(po_mailbag_delete_fds(key_fd, mbg_fd, 0, "K", "M", NULL));
        cr_assert_not(po_mailbag_delete_fds(key_fd, mbg_fd, 0, "K", "M", NULL));
        g_autoptr(PoMailbag) after = po_mailbag_load_fds(key_fd, mbg_fd, "K", "M", &error);
        cr_assert_not_null(after);
        PoMailbagStats stats;
        po_mailbag_stats(after, &stats);
        cr_assert_eq(stats.total, 6);
        cr_assert_eq(stats.live, 5);
        cr_assert_eq(mailbag_record_number(po_mailbag_record(after, 1)), 9);
        cr_assert_eq(after->key[0], 0x77);
        /* A truncated .KEY is corruption naming the file. */
        cr_assert(ftruncate(key_fd, 100) == 0);
        g_clear_error(&error);
        cr_assert_eq(po_mailbag_append_fds(key_fd, mbg_fd, record, "KEY/INQUEUE3.KEY", "M", &error), -1);
        cr_assert(g_str_has_prefix(error->message, "KEY/INQUEUE3.KEY: offset 0x64"), "%s", error->message);
        close(key_fd);
        close(mbg_fd);
        g_clear_error(&error);
        cr_assert_null(po_mailbag_load(root, "INQUEUE3", &error));
        cr_assert(strstr(error->message, "INQUEUE3.KEY") != NULL);
        g_clear_error(&error);
        cr_assert_null(po_mailbag_load(root, "NOSUCH", &error));
        cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_IO));
}

Test(mailbag, fd_append_refuses_a_full_mailbag)
{
        const char *root = test_scratch;
        g_autofree char *key_path = g_build_filename(root, "X.KEY", NULL);
        g_autofree char *mbg_path = g_build_filename(root, "X.MBG", NULL);
        int key_fd = open(key_path, O_RDWR | O_CREAT, 0644);
        int mbg_fd = open(mbg_path, O_RDWR | O_CREAT, 0644);
        cr_assert(ftruncate(key_fd, PO_MAILBAG_KEY_SIZE) == 0);
        cr_assert(ftruncate(mbg_fd, PO_MAILBAG_MBG_MAX_SIZE) == 0);
        uint8_t record[PO_MAILBAG_RECORD_SIZE] = { 0 };
        g_autoptr(GError) error = NULL;
        cr_assert_eq(po_mailbag_append_fds(key_fd, mbg_fd, record, "K", "M", &error), -1);
        cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_FULL));
        cr_assert(po_mailbag_delete_fds(key_fd, mbg_fd, 7, "K", "M", NULL));
        cr_assert_eq(po_mailbag_append_fds(key_fd, mbg_fd, record, "K", "M", NULL), 7);
        close(key_fd);
        close(mbg_fd);
}
