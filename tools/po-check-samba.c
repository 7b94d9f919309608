/* po-check-samba.c - which Samba shares reach a mailbagfs mount or its
 * backing directory, and how their settings differ from what the mount
 * needs.
 *
 * Read-only: testparm is run (no shell, bounded in time and output), the
 * mount table is read, and paths are resolved with realpath(3), which
 * looks names up but opens no file; nothing on a share is read or
 * written. A path is resolved as smbd resolves a share's path, following
 * symbolic links, so a share reached through a link is still found.
 */
#include "po-check-samba.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define PO_SAMBA_DAEMON_FSTYPE "fuse.mailbagfs"
/* testparm's error output kept for the message: its first lines say why. */
#define PO_SAMBA_TESTPARM_ERRORS_MAX 4096

G_DEFINE_QUARK(po-samba-error, po_samba_error)

/* --- testparm's output ------------------------------------------------- */

static PoSambaSection *po_samba_section_new(const char *name)
{
        PoSambaSection *section = g_new0(PoSambaSection, 1);
        section->name = g_strdup(name);
        section->params = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        return section;
}

static void po_samba_section_free(PoSambaSection *section)
{
        g_free(section->name);
        g_hash_table_unref(section->params);
        g_free(section);
}

void po_samba_conf_free(PoSambaConf *conf)
{
        if (conf->global)
                po_samba_section_free(conf->global);
        g_ptr_array_unref(conf->shares);
        g_free(conf);
}

/* "[NAME]" (@line trimmed): the section it starts, or NULL with @error. */
static PoSambaSection *po_samba_conf_section(PoSambaConf *conf, const char *line, guint number,
                                             GError **error)
{
        gsize len = strlen(line);
        if (len < 3 || line[len - 1] != ']') {
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_PARSE,
                            "line %u: expected a section name in brackets", number);
                return NULL;
        }
        g_autofree char *name = g_strndup(line + 1, len - 2);
        if (g_ascii_strcasecmp(name, "global") != 0) {
                PoSambaSection *share = po_samba_section_new(name);
                g_ptr_array_add(conf->shares, share);
                return share;
        }
        if (conf->global == NULL)
                conf->global = po_samba_section_new("global");
        return conf->global;
}

/* "NAME = VALUE" (@line trimmed) into @section. */
static bool po_samba_conf_param(PoSambaSection *section, const char *line, guint number,
                                GError **error)
{
        const char *equals = strchr(line, '=');
        if (section == NULL || equals == NULL || equals == line) {
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_PARSE, "line %u: %s", number,
                            section == NULL ? "a parameter before the first section"
                                            : "expected NAME = VALUE");
                return false;
        }
        g_autofree char *raw_name = g_strndup(line, (gsize)(equals - line));
        char *name = g_ascii_strdown(g_strstrip(raw_name), -1);
        g_hash_table_replace(section->params, name, g_strstrip(g_strdup(equals + 1)));
        return true;
}

PoSambaConf *po_samba_conf_parse(const char *text, GError **error)
{
        g_autoptr(PoSambaConf) conf = g_new0(PoSambaConf, 1);
        conf->shares = g_ptr_array_new_with_free_func((GDestroyNotify)po_samba_section_free);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        PoSambaSection *section = NULL;
        for (guint i = 0; lines[i]; i++) {
                const char *line = g_strstrip(lines[i]);
                if (*line == '\0' || *line == '#' || *line == ';')
                        continue;
                if (*line != '[') {
                        if (!po_samba_conf_param(section, line, i + 1, error))
                                return NULL;
                        continue;
                }
                section = po_samba_conf_section(conf, line, i + 1, error);
                if (section == NULL)
                        return NULL;
        }
        if (conf->global == NULL) {
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_PARSE, "no [global] section");
                return NULL;
        }
        return g_steal_pointer(&conf);
}

const char *po_samba_conf_value(const PoSambaConf *conf, const PoSambaSection *share,
                                const char *param)
{
        const char *own = share ? g_hash_table_lookup(share->params, param) : NULL;
        return own ? own : g_hash_table_lookup(conf->global->params, param);
}

/* --- paths ------------------------------------------------------------- */

/* @path as the kernel resolves it now, or, when it does not resolve (it
 * is missing, or under a dead mount), made absolute by its text alone. */
static char *po_samba_canonical(const char *path)
{
        char *real = realpath(path, NULL);
        if (real == NULL)
                return g_canonicalize_filename(path, "/");
        char *copy = g_strdup(real);
        free(real);
        return copy;
}

/* How the share's @path stands to the folder @dir, or NULL. */
static const char *po_samba_relation(const char *path, const char *dir)
{
        if (strcmp(path, dir) == 0)
                return "is";
        if (po_mounts_path_within(path, dir))
                return "lies inside";
        return po_mounts_path_within(dir, path) ? "contains" : NULL;
}

static bool po_samba_is_daemon(const PoSambaMount *mount)
{
        return mount && strcmp(mount->fstype, PO_SAMBA_DAEMON_FSTYPE) == 0;
}

/* --- the check --------------------------------------------------------- */

/* A mailbagfs mount, with its backing directory where clients could
 * reach it past the mount. */
typedef struct {
        const PoSambaMount *mount;
        char *backing; /* canonical; NULL: unknown, or itself under a mailbagfs mount */
} PoSambaDaemon;

static void po_samba_daemon_free(PoSambaDaemon *daemon)
{
        g_free(daemon->backing);
        g_free(daemon);
}

typedef struct {
        const PoSambaConf *conf;
        const GPtrArray *mounts;
        GPtrArray *daemons;  /* PoSambaDaemon */
        GPtrArray *settings; /* PoSambaFinding of kind SETTING, after the backing ones */
        PoSambaReport *report;
} PoSambaCheck;

/* What a share's path reaches: a mount (@backing NULL) or a backing
 * directory; @daemon NULL when neither. */
typedef struct {
        const PoSambaDaemon *daemon;
        const char *backing;
        const char *relation; /* po_samba_relation() of the share to what it reaches */
} PoSambaReach;

void po_samba_finding_free(PoSambaFinding *finding)
{
        g_free(finding->share);
        g_free(finding->path);
        g_free(finding->mount);
        g_free(finding->backing);
        g_free(finding->setting);
        g_free(finding->found);
        g_free(finding->needed);
        g_free(finding->detail);
        g_free(finding);
}

void po_samba_report_free(PoSambaReport *report)
{
        g_ptr_array_unref(report->findings);
        g_ptr_array_unref(report->notes);
        g_free(report);
}

static void po_samba_note(PoSambaCheck *check, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void po_samba_note(PoSambaCheck *check, const char *format, ...)
{
        va_list args;
        va_start(args, format);
        g_ptr_array_add(check->report->notes, g_strdup_vprintf(format, args));
        va_end(args);
}

/* The backing directory of @mount where a share could reach it past the
 * mount: not when the daemon serves it in place, or a mailbagfs mount
 * covers it otherwise. */
static char *po_samba_backing_of(PoSambaCheck *check, const PoSambaMount *mount)
{
        if (!g_path_is_absolute(mount->source)) {
                po_samba_note(check,
                              "the mailbagfs mount %s gives its backing directory as \"%s\", "
                              "relative to where the daemon started: a share of that directory "
                              "is not recognised (start the daemon with an absolute path)",
                              mount->mount_point, mount->source);
                return NULL;
        }
        g_autofree char *backing = po_samba_canonical(mount->source);
        if (po_samba_is_daemon(po_mounts_of_path(check->mounts, backing)))
                return NULL;
        return g_steal_pointer(&backing);
}

static void po_samba_find_daemons(PoSambaCheck *check)
{
        for (guint i = 0; i < check->mounts->len; i++) {
                const PoSambaMount *mount = check->mounts->pdata[i];
                if (!po_samba_is_daemon(mount))
                        continue;
                PoSambaDaemon *daemon = g_new0(PoSambaDaemon, 1);
                daemon->mount = mount;
                daemon->backing = po_samba_backing_of(check, mount);
                g_ptr_array_add(check->daemons, daemon);
        }
}

/* The share's canonical @path against every daemon: a backing directory
 * first (at, in or around it), then a mount (the one serving @path, or
 * one @path contains and that no other mount covers). */
static PoSambaReach po_samba_reach(const PoSambaCheck *check, const char *path)
{
        for (guint i = 0; i < check->daemons->len; i++) {
                const PoSambaDaemon *daemon = check->daemons->pdata[i];
                const char *relation =
                        daemon->backing ? po_samba_relation(path, daemon->backing) : NULL;
                if (relation)
                        return (PoSambaReach){ daemon, daemon->backing, relation };
        }
        const PoSambaMount *top = po_mounts_of_path(check->mounts, path);
        for (guint i = 0; i < check->daemons->len; i++) {
                const PoSambaDaemon *daemon = check->daemons->pdata[i];
                const char *point = daemon->mount->mount_point;
                if (daemon->mount == top)
                        return (PoSambaReach){ daemon, NULL, po_samba_relation(path, point) };
                if (po_mounts_path_within(point, path) &&
                    po_mounts_of_path(check->mounts, point) == daemon->mount)
                        return (PoSambaReach){ daemon, NULL, "contains" };
        }
        return (PoSambaReach){ NULL, NULL, NULL };
}

static PoSambaFinding *po_samba_finding_new(const char *kind, const PoSambaSection *share,
                                            const char *path, const PoSambaReach *reach)
{
        PoSambaFinding *finding = g_new0(PoSambaFinding, 1);
        finding->kind = kind;
        finding->share = g_strdup(share->name);
        finding->path = g_strdup(path);
        finding->mount = g_strdup(reach->daemon->mount->mount_point);
        return finding;
}

static void po_samba_report_backing(PoSambaCheck *check, const PoSambaSection *share,
                                    const char *path, const PoSambaReach *reach)
{
        PoSambaFinding *finding = po_samba_finding_new(PO_SAMBA_KIND_BACKING, share, path, reach);
        finding->backing = g_strdup(reach->backing);
        bool same = strcmp(reach->relation, "is") == 0;
        finding->detail = g_strdup_printf(
                "%s %s the backing directory %s%sof the mailbagfs mount %s: its clients bypass "
                "every lease (the worst finding); share the mount instead",
                path, reach->relation, same ? "" : reach->backing, same ? "" : " ",
                finding->mount);
        g_ptr_array_add(check->report->findings, finding);
}

/* A setting the mount needs, and what follows when a share has another. */
typedef struct {
        const char *param;
        const char *needed;
        const char *consequence;
} PoSambaRule;

#define PO_SAMBA_CASE_CONSEQUENCE \
        "names may reach the postoffice in lower case, and a lower-case name breaks Mail's " \
        "lock test (KB Q129456)"

static const PoSambaRule po_samba_rules[] = {
        { "oplocks", "no",
          "SMB clients cache the .KEY, .MBG and GLB files that programs outside this smbd "
          "rewrite" },
        { "level2 oplocks", "no",
          "SMB clients keep read caches of the .KEY, .MBG and GLB files that programs outside "
          "this smbd rewrite" },
        { "kernel oplocks", "no",
          "smbd asks the mount for kernel leases, which a FUSE mount cannot grant" },
        { "kernel share modes", "no",
          "on Samba 4.17 writes fail with sharing violations (Linux 5.15 dropped the "
          "LOCK_MAND share modes smbd asks for)" },
        { "posix locking", "yes",
          "SMB record locks must become the mount's fcntl locks, or Wine and local programs "
          "never see them" },
        { "strict locking", "yes",
          "DOS record locks are mandatory: I/O into a range another client locked must fail" },
        { "case sensitive", "yes", PO_SAMBA_CASE_CONSEQUENCE },
        { "default case", "upper", PO_SAMBA_CASE_CONSEQUENCE },
        { "preserve case", "no", PO_SAMBA_CASE_CONSEQUENCE },
        { "short preserve case", "no", PO_SAMBA_CASE_CONSEQUENCE },
        { "mangled names", "no",
          "smbd makes up ~ short names for names that are not 8.3 upper case, which Mail "
          "cannot use, and a lower-case name breaks its lock test (KB Q129456)" },
};

/* A value as Samba reads it: lp_bool()'s words folded to "yes" and "no",
 * anything else in lower case. */
static char *po_samba_fold(const char *value)
{
        static const char *const yes[] = { "yes", "true", "on", "1", NULL };
        static const char *const no[] = { "no", "false", "off", "0", NULL };
        g_autofree char *lower = g_ascii_strdown(value, -1);
        if (g_strv_contains(yes, lower))
                return g_strdup("yes");
        if (g_strv_contains(no, lower))
                return g_strdup("no");
        return g_steal_pointer(&lower);
}

/* Whether the list @modules (spaces or commas between) names @module. */
static bool po_samba_has_module(const char *modules, const char *module)
{
        g_auto(GStrv) names = g_strsplit_set(modules ? modules : "", " \t,", -1);
        return g_strv_contains((const char *const *)names, module);
}

static void po_samba_report_setting(PoSambaCheck *check, const PoSambaSection *share,
                                    const char *path, const PoSambaReach *reach,
                                    const char *param, const char *value, const char *needed,
                                    const char *consequence)
{
        PoSambaFinding *finding = po_samba_finding_new(PO_SAMBA_KIND_SETTING, share, path, reach);
        finding->setting = g_strdup(param);
        finding->found = g_strdup(value ? value : "");
        finding->needed = g_strdup(needed);
        const char *shown = value == NULL ? "(not shown by testparm)" : *value ? value : "(empty)";
        finding->detail = g_strdup_printf("%s = %s, needs %s: %s", param, shown, needed,
                                          consequence);
        g_ptr_array_add(check->settings, finding);
}

static void po_samba_check_settings(PoSambaCheck *check, const PoSambaSection *share,
                                    const char *path, const PoSambaReach *reach)
{
        for (gsize i = 0; i < G_N_ELEMENTS(po_samba_rules); i++) {
                const PoSambaRule *rule = &po_samba_rules[i];
                const char *value = po_samba_conf_value(check->conf, share, rule->param);
                g_autofree char *folded = value ? po_samba_fold(value) : NULL;
                if (folded == NULL || strcmp(folded, rule->needed) != 0)
                        po_samba_report_setting(check, share, path, reach, rule->param, value,
                                                rule->needed, rule->consequence);
        }
        const char *clustering = po_samba_conf_value(check->conf, NULL, "clustering");
        g_autofree char *folded = clustering ? po_samba_fold(clustering) : NULL;
        const char *modules = po_samba_conf_value(check->conf, share, "vfs objects");
        if (folded && strcmp(folded, "yes") == 0 && !po_samba_has_module(modules, "fileid"))
                po_samba_report_setting(check, share, path, reach, "vfs objects", modules,
                                        "fileid",
                                        "with clustering = yes the same file gets different "
                                        "IDs on different nodes, so their locks do not meet");
}

static void po_samba_check_share(PoSambaCheck *check, const PoSambaSection *share)
{
        const char *path = po_samba_conf_value(check->conf, share, "path");
        /* [homes] without a path, [IPC$]: nothing on disk. */
        if (path == NULL || *path == '\0')
                return;
        if (strchr(path, '%')) {
                po_samba_note(check,
                              "share [%s]: its path %s changes with the client (a %% "
                              "substitution): not checked",
                              share->name, path);
                return;
        }
        g_autofree char *canonical = po_samba_canonical(path);
        PoSambaReach reach = po_samba_reach(check, canonical);
        if (reach.daemon == NULL)
                return;
        check->report->shares_reaching++;
        if (reach.backing)
                po_samba_report_backing(check, share, path, &reach);
        else
                po_samba_check_settings(check, share, path, &reach);
}

PoSambaReport *po_samba_check(const PoSambaConf *conf, const GPtrArray *mounts)
{
        g_autoptr(PoSambaReport) report = g_new0(PoSambaReport, 1);
        report->findings = g_ptr_array_new_with_free_func((GDestroyNotify)po_samba_finding_free);
        report->notes = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) daemons =
                g_ptr_array_new_with_free_func((GDestroyNotify)po_samba_daemon_free);
        g_autoptr(GPtrArray) settings =
                g_ptr_array_new_with_free_func((GDestroyNotify)po_samba_finding_free);
        PoSambaCheck check = {
                .conf = conf,
                .mounts = mounts,
                .daemons = daemons,
                .settings = settings,
                .report = report,
        };
        po_samba_find_daemons(&check);
        report->mounts = daemons->len;
        report->shares = conf->shares->len;
        for (guint i = 0; i < conf->shares->len; i++)
                po_samba_check_share(&check, conf->shares->pdata[i]);
        g_ptr_array_extend_and_steal(report->findings, g_steal_pointer(&settings));
        return g_steal_pointer(&report);
}

/* --- running testparm -------------------------------------------------- */

/* One of testparm's output pipes, read into @text up to @max bytes. */
typedef struct {
        int fd; /* -1 once it ended */
        GString *text;
        gsize max;
        bool overflow; /* more came than @max; the rest was dropped */
} PoSambaStream;

static void po_samba_stream_close(PoSambaStream *stream)
{
        if (stream->fd >= 0)
                close(stream->fd);
        stream->fd = -1;
}

static void po_samba_stream_read(PoSambaStream *stream)
{
        char buffer[65536];
        ssize_t got = read(stream->fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR)
                return;
        if (got <= 0) {
                po_samba_stream_close(stream);
                return;
        }
        gsize room = stream->max - stream->text->len;
        if ((gsize)got > room)
                stream->overflow = true;
        g_string_append_len(stream->text, buffer, (gssize)MIN((gsize)got, room));
}

/* Reads both streams to their end: 0, or -ETIME when @deadline (monotonic
 * microseconds) passed first, -EFBIG when @out overflowed. */
static int po_samba_collect(PoSambaStream *out, PoSambaStream *err, gint64 deadline)
{
        while (out->fd >= 0 || err->fd >= 0) {
                if (out->overflow)
                        return -EFBIG;
                gint64 left = deadline - g_get_monotonic_time();
                if (left <= 0)
                        return -ETIME;
                struct pollfd fds[2] = {
                        { .fd = out->fd, .events = POLLIN },
                        { .fd = err->fd, .events = POLLIN },
                };
                if (poll(fds, 2, (int)(left / 1000 + 1)) < 0 && errno != EINTR)
                        return -errno;
                if (fds[0].revents)
                        po_samba_stream_read(out);
                if (fds[1].revents)
                        po_samba_stream_read(err);
        }
        return out->overflow ? -EFBIG : 0;
}

/* Waits for @pid to end, killing it at @deadline (it may close its
 * output and go on): 0 with its wait status in @status, or -ETIME when it
 * had to be killed. */
static int po_samba_reap(GPid pid, gint64 deadline, int *status)
{
        int result = 0;
        int pidfd = pidfd_open(pid, 0);
        if (pidfd >= 0) {
                struct pollfd ended = { .fd = pidfd, .events = POLLIN };
                gint64 left = deadline - g_get_monotonic_time();
                if (left <= 0 || poll(&ended, 1, (int)(left / 1000 + 1)) == 0) {
                        kill(pid, SIGKILL);
                        result = -ETIME;
                }
                close(pidfd);
        }
        while (waitpid(pid, status, 0) < 0 && errno == EINTR)
                ;
        g_spawn_close_pid(pid);
        return result;
}

/* testparm's error output on one line. */
static char *po_samba_said(const GString *errors)
{
        g_auto(GStrv) lines = g_strsplit(errors->str, "\n", -1);
        g_autoptr(GPtrArray) kept = g_ptr_array_new();
        for (char **line = lines; *line; line++)
                if (*g_strstrip(*line))
                        g_ptr_array_add(kept, *line);
        g_ptr_array_add(kept, NULL);
        g_autofree char *joined = g_strjoinv("; ", (char **)kept->pdata);
        return *joined ? g_strdup_printf(": %s", joined) : g_strdup("");
}

static bool po_samba_spawn(const char *const *argv, GPid *pid, int *out, int *err,
                           GError **error)
{
        g_auto(GStrv) envp = g_environ_setenv(g_get_environ(), "LC_ALL", "C", TRUE);
        g_autoptr(GError) why = NULL;
        if (g_spawn_async_with_pipes(NULL, (char **)argv, envp,
                                     G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD |
                                             G_SPAWN_STDIN_FROM_DEV_NULL | G_SPAWN_CLOEXEC_PIPES,
                                     NULL, NULL, pid, NULL, out, err, &why))
                return true;
        if (g_error_matches(why, G_SPAWN_ERROR, G_SPAWN_ERROR_NOENT))
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "testparm not found in PATH: it comes with Samba (Debian: "
                            "samba-common-bin)");
        else
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "cannot run testparm: %s", why->message);
        return false;
}

/* Sets @error for a run of testparm on @what that gave no output to use:
 * @collected as po_samba_collect() said, @status its wait status. */
static void po_samba_testparm_failed(GError **error, const char *what, int collected,
                                     int status, const GString *errors)
{
        g_autofree char *said = po_samba_said(errors);
        if (collected == -ETIME)
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "testparm on %s did not finish in %d s: stopped", what,
                            PO_SAMBA_TESTPARM_SECONDS);
        else if (collected == -EFBIG)
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "testparm on %s printed more than %d MiB: stopped", what,
                            PO_SAMBA_TESTPARM_OUTPUT_MAX >> 20);
        else if (collected < 0)
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "reading testparm's output: %s", g_strerror(-collected));
        else if (WIFEXITED(status))
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "testparm on %s failed (exit status %d)%s", what,
                            WEXITSTATUS(status), said);
        else
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_TESTPARM,
                            "testparm on %s was killed by signal %d%s", what, WTERMSIG(status),
                            said);
}

char *po_samba_testparm(const char *smb_conf, GError **error)
{
        /* Absolute, so a name starting with "-" is no option to testparm. */
        g_autofree char *conf = smb_conf ? g_canonicalize_filename(smb_conf, NULL) : NULL;
        const char *const argv[] = { "testparm", "-s", "-v", conf, NULL };
        GPid pid;
        int out_fd, err_fd;
        if (!po_samba_spawn(argv, &pid, &out_fd, &err_fd, error))
                return NULL;
        g_autoptr(GString) out_text = g_string_new(NULL);
        g_autoptr(GString) err_text = g_string_new(NULL);
        PoSambaStream out = { out_fd, out_text, PO_SAMBA_TESTPARM_OUTPUT_MAX, false };
        PoSambaStream err = { err_fd, err_text, PO_SAMBA_TESTPARM_ERRORS_MAX, false };
        gint64 deadline = g_get_monotonic_time() + PO_SAMBA_TESTPARM_SECONDS * G_USEC_PER_SEC;
        int collected = po_samba_collect(&out, &err, deadline);
        if (collected < 0)
                kill(pid, SIGKILL);
        po_samba_stream_close(&out);
        po_samba_stream_close(&err);
        int status = 0;
        int waited = po_samba_reap(pid, deadline, &status);
        if (collected == 0)
                collected = waited;
        if (collected == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return g_string_free(g_steal_pointer(&out_text), FALSE);
        po_samba_testparm_failed(error, conf ? conf : "its default file", collected, status,
                                 err_text);
        return NULL;
}

PoSambaReport *po_samba_run(const char *smb_conf, GError **error)
{
        g_autofree char *printed = po_samba_testparm(smb_conf, error);
        if (printed == NULL)
                return NULL;
        g_autoptr(PoSambaConf) conf = po_samba_conf_parse(printed, error);
        if (conf == NULL) {
                g_prefix_error(error, "testparm's output: ");
                return NULL;
        }
        g_autofree char *mountinfo = NULL;
        g_autoptr(GError) why = NULL;
        if (!g_file_get_contents("/proc/self/mountinfo", &mountinfo, NULL, &why)) {
                g_set_error(error, PO_SAMBA_ERROR, PO_SAMBA_ERROR_IO, "%s", why->message);
                return NULL;
        }
        g_autoptr(GPtrArray) mounts = po_mounts_parse(mountinfo, error);
        if (mounts == NULL) {
                g_prefix_error(error, "/proc/self/mountinfo: ");
                return NULL;
        }
        return po_samba_check(conf, mounts);
}
