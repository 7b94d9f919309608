/* test-status-line.c - status lines: hostile names survive a round trip,
 * the daemon's line shapes (old and new) read back, and every kind of bad
 * input is refused with its line number. */
#include "po-error.h"
#include "status-line.h"
#include "test-util.h"

static GPtrArray *parse_ok(const char *text)
{
        g_autoptr(GError) error = NULL;
        GPtrArray *lines = po_status_parse(text, strlen(text), "T", &error);
        cr_assert_not_null(lines, "parse of \"%s\" failed: %s", text, error ? error->message : "?");
        cr_assert_null(error);
        return lines;
}

static char *encode(const PoStatusLine *line)
{
        GString *out = g_string_new(NULL);
        po_status_line_append_to(line, out);
        return g_string_free(out, FALSE);
}

/* Encodes @line, parses it back and checks it is one equal line. */
static void expect_round_trip(const PoStatusLine *line)
{
        g_autofree char *text = encode(line);
        cr_assert_eq(strchr(text, '\n'), text + strlen(text) - 1, "not one line: %s", text);
        for (const char *p = text; *p != '\n'; p++)
                cr_assert(*p >= ' ' && *p < 0x7F, "unencoded byte 0x%02x in %s", (unsigned char)*p, text);
        g_autoptr(GPtrArray) lines = parse_ok(text);
        cr_assert_eq(lines->len, 1, "%s", text);
        cr_assert(po_status_line_equal(line, lines->pdata[0]), "not equal after a round trip: %s", text);
}

static const char *const hostile[] = {
        "bash", "my program", "a=b", "100%", "%41", "line\nbreak", "tab\there", "cr\r",
        "caf\xc3\xa9 \xe2\x82\xac", "=", "%", " ", "  two  ", "\x01\x7f\xff", "*", ".",
        "po-sim-gat-2", "GLB/CONTROL.GLB", "HUB/PO 2/KEY", "key=value with spaces=",
};

Test(status_line, hostile_words_and_values_round_trip)
{
        for (gsize i = 0; i < G_N_ELEMENTS(hostile); i++) {
                g_autoptr(PoStatusLine) line = po_status_line_new();
                po_status_line_add_word(line, "session");
                po_status_line_add_word(line, hostile[i]);
                po_status_line_add_word(line, "held");
                po_status_line_add_field(line, "postoffice", hostile[i]);
                po_status_line_add_field(line, "program", hostile[i]);
                po_status_line_add_field_printf(line, "pid", "%d", 42);
                expect_round_trip(line);
                g_autoptr(GPtrArray) back = NULL;
                g_autofree char *text = encode(line);
                back = parse_ok(text);
                const PoStatusLine *read = back->pdata[0];
                cr_assert_str_eq(po_status_line_word(read, 1), hostile[i]);
                cr_assert_str_eq(po_status_line_field(read, "program"), hostile[i]);
                cr_assert_str_eq(po_status_line_field(read, "pid"), "42");
        }
}

Test(status_line, encoding_is_the_documented_one)
{
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, "session");
        po_status_line_add_word(line, "a b=c%d\n\xc3\xa9");
        po_status_line_add_field(line, "program", "x y");
        po_status_line_add_field(line, "empty", "");
        g_autofree char *text = encode(line);
        cr_assert_str_eq(text, "session a%20b%3Dc%25d%0A%C3%A9 program=x%20y empty=\n");
}

/* A line written straight into a buffer (the trail's way) is byte for
 * byte the line built and encoded, hostile text, an empty word and an
 * empty value included, and starts a new line after one already there. */
Test(status_line, lines_written_straight_match_built_ones)
{
        g_autoptr(GString) written = g_string_new(NULL);
        g_autoptr(GString) built = g_string_new(NULL);
        const char *empty_word[] = {"", "x"};
        for (gsize i = 0; i < G_N_ELEMENTS(hostile) + G_N_ELEMENTS(empty_word); i++) {
                const char *text = i < G_N_ELEMENTS(hostile) ? hostile[i]
                                                             : empty_word[i - G_N_ELEMENTS(hostile)];
                g_autoptr(PoStatusLine) line = po_status_line_new();
                po_status_line_add_word(line, "event");
                po_status_line_add_word(line, text);
                po_status_line_add_field(line, "file", text);
                po_status_line_add_field(line, "empty", "");
                po_status_line_add_field_printf(line, "uid", "%u", 4294967295u);
                po_status_line_append_to(line, built);

                po_status_write_word(written, "event");
                po_status_write_word(written, text);
                po_status_write_field(written, "file", text);
                po_status_write_field(written, "empty", "");
                po_status_write_field_uint64(written, "uid", 4294967295u);
                g_string_append_c(written, '\n');
                cr_assert_str_eq(written->str, built->str, "for \"%s\"", text);
        }
        g_autoptr(GPtrArray) lines = parse_ok(written->str);
        cr_assert_eq(lines->len, G_N_ELEMENTS(hostile) + G_N_ELEMENTS(empty_word));
        cr_assert_str_eq(po_status_line_field(lines->pdata[3], "file"), hostile[3]);
}

Test(status_line, numbers_written_in_decimal)
{
        const guint64 values[] = {0, 7, 10, 99, 4294967295u, G_MAXUINT64};
        for (gsize i = 0; i < G_N_ELEMENTS(values); i++) {
                g_autofree char *want = g_strdup_printf("%" G_GUINT64_FORMAT " n=%" G_GUINT64_FORMAT,
                                                        values[i], values[i]);
                g_autoptr(GString) out = g_string_new(NULL);
                po_status_write_word_uint64(out, values[i]);
                po_status_write_field_uint64(out, "n", values[i]);
                cr_expect_str_eq(out->str, want);
        }
}

Test(status_line, empty_word_and_empty_value)
{
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, "");
        po_status_line_add_word(line, "");
        po_status_line_add_field(line, "k", "");
        g_autofree char *text = encode(line);
        cr_assert_str_eq(text, "%00 %00 k=\n");
        expect_round_trip(line);
        g_autoptr(GPtrArray) lines = parse_ok("x k=%00");
        cr_assert_str_eq(po_status_line_field(lines->pdata[0], "k"), "");
}

Test(status_line, long_values_round_trip)
{
        TestRandom random = { 11 };
        for (int round = 0; round < 20; round++) {
                gsize len = 1 + test_random_next(&random) % 10000; /* encoded twice: < 64 KiB */
                g_autofree char *value = g_malloc(len + 1);
                for (gsize i = 0; i < len; i++)
                        value[i] = (char)(1 + test_random_next(&random) % 255);
                value[len] = '\0';
                g_autoptr(PoStatusLine) line = po_status_line_new();
                po_status_line_add_word(line, "records");
                po_status_line_add_word(line, value);
                po_status_line_add_field(line, "message", value);
                expect_round_trip(line);
        }
}

Test(status_line, fields_and_words_keep_order_and_keys_stay_unique)
{
        g_autoptr(PoStatusLine) line = po_status_line_new();
        po_status_line_add_word(line, "a");
        po_status_line_add_field(line, "x", "1");
        po_status_line_add_word(line, "b"); /* still written before the fields */
        po_status_line_add_field(line, "y", "2");
        po_status_line_add_field(line, "x", "3");
        g_autofree char *text = encode(line);
        cr_assert_str_eq(text, "a b x=3 y=2\n");
        cr_assert_eq(po_status_line_n_words(line), 2);
        cr_assert_eq(po_status_line_n_fields(line), 2);
        cr_assert_str_eq(po_status_line_field_key(line, 1), "y");
        cr_assert_str_eq(po_status_line_field_value(line, 1), "2");
        cr_assert_null(po_status_line_word(line, 2));
        cr_assert_null(po_status_line_field_key(line, 2));
        cr_assert_null(po_status_line_field(line, "z"));
        guint64 n = 0;
        cr_assert(po_status_line_field_uint64(line, "x", &n));
        cr_assert_eq(n, 3);
}

Test(status_line, several_lines_blank_lines_and_missing_last_newline)
{
        g_autoptr(GPtrArray) lines = parse_ok("stats PO1 acquisitions=3\n\nstats * acquisitions=3");
        cr_assert_eq(lines->len, 2);
        cr_assert_str_eq(po_status_line_word(lines->pdata[1], 1), "*");
        g_autoptr(GPtrArray) none = parse_ok("");
        cr_assert_eq(none->len, 0);
        g_autoptr(GPtrArray) blank = parse_ok("\n\n");
        cr_assert_eq(blank->len, 0);
}

Test(status_line, the_daemon_line_shapes_read_back)
{
        const char *text =
                "session INQUEUE3 held postoffice=HUB/PO2 pid=18252 program=bash protocol=0LK "
                "since=2026-11-23T02:18:22Z refs=1 waiters=2 waiting=18255,18256 future=1\n"
                "key-write INQUEUE3 free postoffice=.\n"
                "exclusive GLB/CONTROL.GLB held postoffice=PO1 pid=0 program=%3F protocol=0LK "
                "since=2026-11-23T02:18:22Z refs=1 waiters=0 holder=unknown\n"
                "postoffice HUB/PO2 queues=INQUEUE3,INQUEUE,SYSTEM\n"
                "stats * acquisitions=2 waits=1 timeouts=0 deadlocks=0 stale_reclaimed=0 "
                "breaks=0 cancellations=0 mixed_protocol=0\n"
                "records INQUEUE3 corrupt postoffice=PO1 message=KEY/INQUEUE3.KEY:%20offset%200x22f\n";
        g_autoptr(GPtrArray) lines = parse_ok(text);
        cr_assert_eq(lines->len, 6);
        PoStatusLease lease;
        cr_assert(po_status_line_as_lease(lines->pdata[0], &lease));
        cr_assert_str_eq(lease.kind, PO_STATUS_KIND_SESSION);
        cr_assert_str_eq(lease.name, "INQUEUE3");
        cr_assert(lease.held);
        cr_assert_str_eq(lease.postoffice, "HUB/PO2");
        cr_assert_str_eq(po_status_line_field(lines->pdata[0], PO_STATUS_FIELD_WAITING), "18255,18256");
        cr_assert(po_status_line_as_lease(lines->pdata[1], &lease));
        cr_assert_not(lease.held);
        cr_assert_str_eq(lease.postoffice, PO_STATUS_PATH_ROOT);
        cr_assert(po_status_line_as_lease(lines->pdata[2], &lease));
        cr_assert_str_eq(po_status_line_field(lines->pdata[2], PO_STATUS_FIELD_HOLDER),
                         PO_STATUS_HOLDER_UNKNOWN);
        cr_assert_str_eq(po_status_line_field(lines->pdata[2], PO_STATUS_FIELD_PROGRAM), "?");
        cr_assert_not(po_status_line_as_lease(lines->pdata[3], &lease));
        cr_assert_not(po_status_line_as_lease(lines->pdata[4], &lease));
        cr_assert_str_eq(po_status_line_field(lines->pdata[5], PO_STATUS_FIELD_MESSAGE),
                         "KEY/INQUEUE3.KEY: offset 0x22f");
}

Test(status_line, old_daemon_lines_read_back)
{
        /* Before postoffices were named: no postoffice=, stats as fields alone. */
        g_autoptr(GPtrArray) lines = parse_ok(
                "session INQUEUE3 held pid=12 program=po-sim-ext-1 protocol=0LK "
                "since=2026-11-23T02:18:22Z refs=1 waiters=0\n"
                "acquisitions=38 waits=6 timeouts=4 deadlocks=0\n");
        PoStatusLease lease;
        cr_assert(po_status_line_as_lease(lines->pdata[0], &lease));
        cr_assert(lease.held);
        cr_assert_str_eq(lease.postoffice, ".");
        cr_assert_eq(po_status_line_n_words(lines->pdata[1]), 0);
        guint64 n = 0;
        cr_assert(po_status_line_field_uint64(lines->pdata[1], "waits", &n));
        cr_assert_eq(n, 6);
}

static void expect_refused(const char *text, gsize len, const char *message)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) lines = po_status_parse(text, len, "user.mailbag.locks", &error);
        cr_assert_null(lines, "accepted: %.*s", (int)len, text);
        cr_assert(g_error_matches(error, PO_FORMAT_ERROR, PO_FORMAT_ERROR_CORRUPT));
        cr_assert(strstr(error->message, message) != NULL, "\"%s\" has no \"%s\"", error->message,
                  message);
}

Test(status_line, malformed_input_is_refused_with_its_line)
{
        struct {
                const char *text;
                const char *message;
        } cases[] = {
                { "a x=1 b\n", "user.mailbag.locks: line 1: a word after a field" },
                { "ok\na =1\n", "line 2: an empty key" },
                { "a %4\n", "line 1: bad percent escape" },
                { "a %\n", "line 1: bad percent escape" },
                { "a %G0\n", "line 1: bad percent escape" },
                { "a x=%4", "line 1: bad percent escape" },
                { "a b%00c\n", "line 1: %00 (a NUL byte) inside" },
                { "a X=1\n", "line 1: bad key \"X\"" },
                { "a pid=1 pid=2\n", "line 1: key 'pid' appears twice" },
                { "a x=1=2\n", "line 1: '=' inside a value" },
                { "a  b\n", "line 1: an empty word" },
                { " a\n", "line 1: an empty word" },
                { "a \n", "line 1: an empty word" },
                { "a\tb\n", "line 1: unencoded byte 0x09" },
                { "ok\nok\ncaf\xc3\xa9\n", "line 3: unencoded byte 0xC3" },
                { "a\r\n", "line 1: unencoded byte 0x0D" },
        };
        for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
                expect_refused(cases[i].text, strlen(cases[i].text), cases[i].message);
        expect_refused("ok\nab\0c\n", 8, "line 2: a NUL byte at column 3");
}

Test(status_line, overlong_line_is_refused)
{
        gsize len = PO_STATUS_LINE_MAX;
        g_autofree char *text = g_malloc(len + 3);
        memset(text, 'A', len + 2);
        text[len] = '\n';
        /* Exactly the limit is accepted. */
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) lines = po_status_parse(text, len + 1, "T", &error);
        cr_assert_not_null(lines, "%s", error ? error->message : "");
        text[len] = 'A';
        expect_refused(text, len + 2, "line 1: line longer than 65536 bytes");
}

Test(status_line, truncated_input_parses_or_fails_cleanly)
{
        const char *text = "session INQUEUE3 held postoffice=HUB%2FPO%202 pid=1 program=a%20b "
                           "waiting=1,2\nstats * acquisitions=1\n";
        gsize full = strlen(text);
        for (gsize len = 0; len <= full; len++) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GPtrArray) lines = po_status_parse(text, len, "T", &error);
                cr_assert((lines == NULL) != (error == NULL), "length %zu", len);
                /* A cut inside an escape, after a space or inside a key. */
                if (lines == NULL)
                        cr_assert(strstr(error->message, ": bad percent escape") ||
                                          strstr(error->message, ": an empty word") ||
                                          strstr(error->message, ": a word after a field"),
                                  "length %zu: %s", len, error->message);
        }
}

Test(status_line, random_bytes_never_crash_and_reparse_equal)
{
        TestRandom random = { 3 };
        static const char alphabet[] = "ab =%0F9\n\x01\xc3z_";
        unsigned parsed = 0;
        for (int round = 0; round < 20000; round++) {
                char text[48];
                gsize len = test_random_next(&random) % sizeof text;
                for (gsize i = 0; i < len; i++)
                        text[i] = alphabet[test_random_next(&random) % (sizeof alphabet - 1)];
                g_autoptr(GError) error = NULL;
                g_autoptr(GPtrArray) lines = po_status_parse(text, len, "T", &error);
                if (lines == NULL) {
                        cr_assert(g_str_has_prefix(error->message, "T: line "), "%s", error->message);
                        continue;
                }
                parsed++;
                g_autoptr(GString) again = g_string_new(NULL);
                for (guint i = 0; i < lines->len; i++)
                        po_status_line_append_to(lines->pdata[i], again);
                g_autoptr(GPtrArray) back = parse_ok(again->str);
                cr_assert_eq(back->len, lines->len);
                for (guint i = 0; i < lines->len; i++)
                        cr_assert(po_status_line_equal(lines->pdata[i], back->pdata[i]));
        }
        cr_assert_gt(parsed, 100);
}

/* A wait histogram: per-bucket counts written cumulative, read back. */
Test(status_line, wait_histogram_round_trip_and_refusals)
{
        const guint64 bounds[] = {1, 10, 100};
        const guint64 counts[] = {2, 0, 3, 1};
        g_autofree char *text = po_status_histogram_format(bounds, counts, 4);
        cr_assert_str_eq(text, "1:2,10:2,100:5,inf:6");
        g_autoptr(GArray) got_bounds = g_array_new(FALSE, FALSE, sizeof(guint64));
        g_autoptr(GArray) cumulative = g_array_new(FALSE, FALSE, sizeof(guint64));
        cr_assert(po_status_histogram_parse(text, got_bounds, cumulative));
        cr_assert_eq(got_bounds->len, 4);
        cr_assert_eq(g_array_index(got_bounds, guint64, 2), 100);
        cr_assert_eq(g_array_index(got_bounds, guint64, 3), G_MAXUINT64);
        cr_assert_eq(g_array_index(cumulative, guint64, 3), 6);
        const char *bad[] = {"", "1:2", "1:2,inf:1", "x:1,inf:2", "1:2,inf:3,5:4", "1:-1,inf:2",
                             "1:2,inf:", "1,inf:2"};
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
                cr_expect_not(po_status_histogram_parse(bad[i], got_bounds, cumulative), "%s",
                              bad[i]);
}
