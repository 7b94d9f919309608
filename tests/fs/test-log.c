/* test-log.c - the daemon's log lines are its own: a client's newline
 * starts no line, and a client cannot make it write without bound. */
#include <criterion/criterion.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "status-line.h"

static int saved_stderr = -1;
static char captured_path[] = "/tmp/mailbagfs-test-log-XXXXXX";
static int captured_fd = -1;

static void capture_begin(void)
{
        captured_fd = mkstemp(captured_path);
        cr_assert_geq(captured_fd, 0);
        saved_stderr = dup(STDERR_FILENO);
        cr_assert_geq(saved_stderr, 0);
        cr_assert_geq(dup2(captured_fd, STDERR_FILENO), 0);
        log_setup(false, LOG_INFO);
}

static void capture_end(void)
{
        dup2(saved_stderr, STDERR_FILENO);
        close(saved_stderr);
        close(captured_fd);
        unlink(captured_path);
}

static char **captured_lines(void)
{
        g_autofree char *text = NULL;
        cr_assert(g_file_get_contents(captured_path, &text, NULL, NULL));
        char **lines = g_strsplit(text, "\n", -1);
        /* The text ends with a newline: drop the empty last piece. */
        guint n = g_strv_length(lines);
        if (n > 0 && lines[n - 1][0] == '\0') {
                g_free(lines[n - 1]);
                lines[n - 1] = NULL;
        }
        return lines;
}

Test(log, a_newline_in_a_name_starts_no_line, .init = capture_begin, .fini = capture_end)
{
        log_warning("process %d (%s) waits", 42, "evil\nmailbagfs: error: forged");
        g_auto(GStrv) lines = captured_lines();
        cr_assert_eq(g_strv_length(lines), 1, "the line was split: %s", lines[0]);
        cr_expect(strstr(lines[0], "evil\\x0amailbagfs: error: forged") != NULL, "%s", lines[0]);
        g_autofree char *escaped = po_status_escape_controls("a\tb\rc\x7f");
        cr_expect_str_eq(escaped, "a\\x09b\\x0dc\\x7f");
}

Test(log, repeats_are_bounded_and_counted, .init = capture_begin, .fini = capture_end)
{
        /* Lines that differ only in numbers are one kind. */
        for (int pid = 1000; pid < 1025; pid++)
                log_info("pid %d stopped waiting for session INQUEUE3 (cancelled)", pid);
        /* Another kind is not held back by the first. */
        log_info("pid 7 stopped waiting for session OUTQUEUE (cancelled)");
        g_auto(GStrv) burst = captured_lines();
        guint printed = 0;
        for (char **line = burst; *line; line++)
                printed += strstr(*line, "INQUEUE3") != NULL;
        /* At most one new second can begin during the loop. */
        cr_expect(printed >= 10 && printed <= 20, "%u of 25 printed", printed);
        cr_expect(strstr(burst[g_strv_length(burst) - 1], "OUTQUEUE") != NULL);

        g_usleep(1100 * 1000);
        log_info("pid 2000 stopped waiting for session INQUEUE3 (cancelled)");
        g_auto(GStrv) after = captured_lines();
        const char *last = after[g_strv_length(after) - 1];
        cr_expect(strstr(last, "pid 2000") != NULL, "%s", last);
        cr_expect(strstr(last, "more like it, not logged") != NULL, "no count in: %s", last);
        /* Every line is printed or counted, once. */
        guint lines = 0, counted = 0;
        for (char **line = after; *line; line++) {
                if (!strstr(*line, "INQUEUE3"))
                        continue;
                lines++;
                const char *note = strstr(*line, "(and ");
                if (note)
                        counted += (guint)g_ascii_strtoull(note + 5, NULL, 10);
        }
        cr_expect_eq(lines + counted, 26, "%u printed and %u counted of 26", lines, counted);
}

Test(log, debug_lines_are_never_dropped, .init = capture_begin, .fini = capture_end)
{
        log_setup(false, LOG_DEBUG);
        for (int i = 0; i < 30; i++)
                log_debug("request %d answered", i);
        g_auto(GStrv) lines = captured_lines();
        cr_expect_eq(g_strv_length(lines), 30);
}
