/* po-check - the Knowledge Base operator lore as a tool.
 *
 * Checks a postoffice directory and prints one line per problem,
 * "po-check: KIND: FILE: detail" (FILE relative to DIR), or a JSON array
 * with --json. Exit status: 0 healthy, 1 problems remain, 2 usage or I/O
 * error. The checks and their sources:
 *   missing-folder, missing-marker: every folder and MA0-MAF/AT0-ATF, each
 *     with its 1-byte marker (D, Q123248, Q135868)
 *   lower-case-name: names must be upper case (D, Q129456, Q152903)
 *   mailbag-full, mailbag-near-full: 4096-record limit (D, Q163020, Q237695)
 *   key-size, mbg-size, key-mbg-disagree, mailbag-unpaired, missing-mailbag:
 *     560-byte .KEY, 116-byte .MBG records, bitmap within the .MBG (D/I,
 *     Q119088, Q146113)
 *   old-p1-file: P1 files older than two days are debris (D, Q237695)
 *   access-count, access-alias, glb-size, missing-file, control-behind,
 *     nme-size: the GLB rules (D, Q87402, Q135932, Q99204, Q107767)
 *   misplaced-message: a .MAI/.ATT outside its MA?/AT? folder (D, Q87409)
 *   stale-lock: a lock file whose holder is gone (see po_check_locks).
 *   not-a-file: a symbolic link, FIFO, device or socket in the tree, or a
 *     folder where a KEY, MBG or GLB file should be: never opened to read.
 * DIR may be a raw postoffice or one a mailbagfs mount protects (at the
 * mount root or in a subfolder: DIR itself has user.mailbag.stats); through
 * mailbagfs the daemon's lease lines name the holders of lock files.
 * --fix does only what is safe and prints every action: it creates missing
 * folders and markers, and moves old P1 debris and stale lock files into
 * QUARANT/ (same relative path) at the top of the postoffice. It never
 * deletes anything and never touches MAI, ATT, KEY or MBG contents.
 *
 * Whoever can write to the share can change it while po-check, often run
 * by root, works on it. So po-check reaches the share as the daemon does:
 * DIR is opened once and every file is opened beneath it with openat2()
 * (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), never by a path that a link
 * could redirect; files are read only once fstat() says they are regular
 * files, and opened with O_NONBLOCK, so a FIFO cannot hold po-check. --fix
 * creates with O_CREAT | O_EXCL in folders opened that way, creates
 * folders one at a time with mkdirat() and moves with renameat2() between
 * such folders. What it cannot do safely (a link in the way, a file that
 * changed since it was checked) it leaves alone, with one line saying why,
 * and the exit status says a problem remains. Names from the share are
 * printed with control characters escaped (\xNN); JSON escapes its own.
 *
 * --samba [SMB.CONF] checks no postoffice but the Samba configuration:
 * every share that reaches a mailbagfs mount or its backing directory,
 * against the settings the mount needs (po-check-samba.c). Its findings
 * come out as the others do, FILE being "[SHARE]", with more members in
 * JSON; the exit status is the same.
 */
#include "glb.h"
#include "mailbag.h"
#include "naming.h"
#include "po-check-samba.h"
#include "po-error.h"
#include "po-file.h"
#include "profile.h"
#include "status-attr.h"
#include "status-line.h"
#include "tool-json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PO_CHECK_QUARANTINE "QUARANT"
#define PO_CHECK_P1_MAX_AGE (2 * 24 * 60 * 60)  /* two days, D, Q237695 */
/* Warn at 90% of the hard limit: time to act before [008] errors. */
#define PO_CHECK_NEAR_FULL (PO_MAILBAG_MAX_RECORDS * 9 / 10)
#define PO_CHECK_WALK_DEPTH 8
#define PO_CHECK_ALIAS_REPORTS 10

typedef enum {
        PO_CHECK_FIX_NONE,
        PO_CHECK_FIX_CREATE_FOLDER,
        PO_CHECK_FIX_CREATE_MARKER,
        PO_CHECK_FIX_QUARANTINE,
} PoCheckFix;

typedef struct {
        char *kind;
        char *file;
        char *detail;
        PoCheckFix fix;
        char *action; /* set once --fix acted */
        /* PO_CHECK_FIX_QUARANTINE: the file that was checked, which is the
         * one moved, or none. */
        dev_t dev;
        ino_t ino;
        /* NULL, or more JSON members: name, value, name, value..., NULL */
        char **members;
} PoCheckProblem;

static void po_check_problem_free(PoCheckProblem *problem)
{
        g_strfreev(problem->members);
        g_free(problem->kind);
        g_free(problem->file);
        g_free(problem->detail);
        g_free(problem->action);
        g_free(problem);
}

typedef struct {
        int root_fd;                /* DIR, O_PATH: every file is reached beneath it */
        const PoProfile *profile;
        GPtrArray *problems;
        GPtrArray *lock_files;      /* relative paths of P1 lock files */
        GHashTable *open_files;     /* "dev:ino" of files open on this host */
        GHashTable *not_files;      /* relative paths reported as not-a-file */
        bool open_files_scanned;
        bool mailbagfs;             /* the root has the daemon's status attributes */
        bool progress;
        guint64 scanned;
        time_t now;
        bool have_messages;
        uint32_t max_message;
} PoCheck;

static PoCheckProblem *po_check_report(PoCheck *check, PoCheckFix fix, const char *kind,
                                       const char *file, const char *format, ...)
        G_GNUC_PRINTF(5, 6);

static PoCheckProblem *po_check_report(PoCheck *check, PoCheckFix fix, const char *kind,
                                       const char *file, const char *format, ...)
{
        PoCheckProblem *problem = g_new0(PoCheckProblem, 1);
        va_list args;
        va_start(args, format);
        problem->detail = g_strdup_vprintf(format, args);
        va_end(args);
        problem->kind = g_strdup(kind);
        problem->file = g_strdup(file);
        problem->fix = fix;
        g_ptr_array_add(check->problems, problem);
        return problem;
}

/* Library errors start with the file name; the report names it already. */
static const char *po_check_detail(const GError *error, const char *relpath)
{
        const char *message = error->message;
        gsize len = strlen(relpath);
        if (strncmp(message, relpath, len) == 0 && strncmp(message + len, ": ", 2) == 0)
                return message + len + 2;
        return message;
}

/* --- reaching the share ------------------------------------------------ */

/* Opens @relpath beneath the folder @dirfd, following no symbolic link and
 * never leaving it ("" is @dirfd itself): the descriptor, or -errno
 * (-ELOOP when a link is on the way). O_PATH with O_NOFOLLOW opens a link
 * itself, for fstat(). */
static int po_check_openat(int dirfd, const char *relpath, int flags, mode_t mode)
{
        if ((flags & O_PATH) == 0)
                flags |= O_NOCTTY;
        struct open_how how = {
                .flags = (unsigned)(flags | O_CLOEXEC),
                .mode = (flags & O_CREAT) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        long fd;
        /* glibc 2.36 has no openat2 wrapper. */
        do
                fd = syscall(SYS_openat2, dirfd, relpath[0] ? relpath : ".", &how, sizeof how);
        while (fd < 0 && errno == EINTR);
        return fd < 0 ? -errno : (int)fd;
}

/* What is at @relpath (a link itself, not what it points to): 0 and @st,
 * or -errno (-ELOOP: a folder on the way is a link). */
static int po_check_lstat(const PoCheck *check, const char *relpath, struct stat *st)
{
        po_auto_fd fd = po_check_openat(check->root_fd, relpath, O_PATH | O_NOFOLLOW, 0);
        if (fd < 0)
                return fd;
        return fstat(fd, st) < 0 ? -errno : 0;
}

/* The folder @relpath opened to read its entries, or NULL. */
static DIR *po_check_opendir(const PoCheck *check, const char *relpath)
{
        int fd = po_check_openat(check->root_fd, relpath, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0);
        if (fd < 0)
                return NULL;
        DIR *dir = fdopendir(fd);
        if (dir == NULL)
                close(fd);
        return dir;
}

static void po_check_closedir(DIR *dir)
{
        if (dir)
                closedir(dir);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DIR, po_check_closedir)

/* The next entry's name but "." and "..", or NULL. */
static const char *po_check_readdir(DIR *dir)
{
        struct dirent *entry;
        while (dir && (entry = readdir(dir)) != NULL)
                if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
                        return entry->d_name;
        return NULL;
}

/* A path the daemon's status attributes of @fd are read through. */
#define PO_CHECK_FD_PATH_MAX 32
static void po_check_fd_path(int fd, char path[PO_CHECK_FD_PATH_MAX])
{
        snprintf(path, PO_CHECK_FD_PATH_MAX, "/proc/self/fd/%d", fd);
}

static const char *po_check_type_name(mode_t mode)
{
        if (S_ISDIR(mode))
                return "a folder";
        if (S_ISLNK(mode))
                return "a symbolic link";
        if (S_ISFIFO(mode))
                return "a FIFO (named pipe)";
        if (S_ISCHR(mode))
                return "a character device";
        if (S_ISBLK(mode))
                return "a block device";
        if (S_ISSOCK(mode))
                return "a socket";
        return S_ISREG(mode) ? "a regular file" : "of an unknown type";
}

/* Whether po_check_lstat() found something other than @type there: a
 * link on the way counts too. */
static bool po_check_is_other(int lstat_result, const struct stat *st, mode_t type)
{
        return lstat_result == -ELOOP || (lstat_result == 0 && (st->st_mode & S_IFMT) != type);
}

/* What po_check_lstat() found, when po_check_is_other(): "a FIFO (named
 * pipe) is there", "a symbolic link is on its path"... */
static char *po_check_found(int lstat_result, const struct stat *st)
{
        if (lstat_result == -ELOOP)
                return g_strdup("a symbolic link is on its path");
        return g_strdup_printf("%s is there", po_check_type_name(st->st_mode));
}

static bool po_check_is_link(int lstat_result, const struct stat *st)
{
        return lstat_result == -ELOOP || (lstat_result == 0 && S_ISLNK(st->st_mode));
}

/* Reports @relpath, which is no regular file (po_check_lstat() said
 * @lstat_result and @st), once however many checks meet it. */
static void po_check_report_not_file(PoCheck *check, const char *relpath, int lstat_result,
                                     const struct stat *st)
{
        if (!g_hash_table_add(check->not_files, g_strdup(relpath)))
                return;
        g_autofree char *found = po_check_found(lstat_result, st);
        const char *why = po_check_is_link(lstat_result, st)
                ? "po-check follows no link on the share"
                : lstat_result == 0 && S_ISDIR(st->st_mode)
                ? "programs that open it fail"
                : "po-check does not open it (a program that did could hang or fail)";
        po_check_report(check, PO_CHECK_FIX_NONE, "not-a-file", relpath,
                        "not a regular file: %s; %s", found, why);
}

static void po_check_progress(PoCheck *check)
{
        check->scanned++;
        if (check->progress && check->scanned % 1024 == 0)
                fprintf(stderr, "\rpo-check: scanned %" G_GUINT64_FORMAT " files", check->scanned);
}

/* --- layout ------------------------------------------------------------ */

/* The relative path of an entry whose name differs from @relpath's last
 * component only in case, or NULL. */
static char *po_check_case_variant(const PoCheck *check, const char *relpath)
{
        g_autofree char *parent = g_path_get_dirname(relpath);
        g_autofree char *base = g_path_get_basename(relpath);
        g_autoptr(DIR) dir = po_check_opendir(check, strcmp(parent, ".") == 0 ? "" : parent);
        const char *name;
        while ((name = po_check_readdir(dir)) != NULL)
                if (g_ascii_strcasecmp(name, base) == 0 && strcmp(name, base) != 0)
                        return strcmp(parent, ".") == 0 ? g_strdup(name)
                                                        : g_strconcat(parent, "/", name, NULL);
        return NULL;
}

static void po_check_folder(PoCheck *check, const char *relpath)
{
        struct stat st;
        int found = po_check_lstat(check, relpath, &st);
        if (po_check_is_other(found, &st, S_IFDIR)) {
                /* A link in place of the folder (or on its way) would lead
                 * --fix out of the postoffice: it refuses, and says so. */
                g_autofree char *what = po_check_found(found, &st);
                g_hash_table_add(check->not_files, g_strdup(relpath)); /* not again */
                po_check_report(check, PO_CHECK_FIX_CREATE_FOLDER, "missing-folder", relpath,
                                "not a folder: %s (missing MA?/AT? folders cause \"Disk "
                                "storage full\", Q123248)", what);
                return;
        }
        if (found < 0) {
                /* A case variant ("mai") is reported as lower-case; creating
                 * "MAI" beside it would make two folders a DOS client cannot
                 * tell apart, so --fix leaves that to a human. */
                g_autofree char *variant = po_check_case_variant(check, relpath);
                if (variant)
                        po_check_report(check, PO_CHECK_FIX_NONE, "missing-folder", relpath,
                                        "folder is missing; only %s exists", variant);
                else
                        po_check_report(check, PO_CHECK_FIX_CREATE_FOLDER, "missing-folder", relpath,
                                        "folder is missing (missing MA?/AT? folders cause \"Disk "
                                        "storage full\", Q123248)");
                return;
        }
        g_autofree char *marker = g_build_filename(relpath, po_profile_marker(check->profile), NULL);
        found = po_check_lstat(check, marker, &st);
        if (po_check_is_other(found, &st, S_IFREG)) {
                g_autofree char *what = po_check_found(found, &st);
                g_hash_table_add(check->not_files, g_strdup(marker)); /* not again */
                po_check_report(check, PO_CHECK_FIX_CREATE_MARKER, "missing-marker", marker,
                                "expected a read-only 1-byte file in every folder (Q135868); "
                                "%s", what);
        } else if (found < 0 || st.st_size != 1)
                po_check_report(check, PO_CHECK_FIX_CREATE_MARKER, "missing-marker", marker,
                                "expected a read-only 1-byte file in every folder (Q135868)");
}

static void po_check_layout(PoCheck *check)
{
        const char *const *folders = po_profile_folders(check->profile);
        for (gsize i = 0; folders[i]; i++)
                po_check_folder(check, folders[i]);
        for (uint32_t digit = 0; digit < 16; digit++) {
                g_autofree char *messages = po_profile_message_folder(check->profile, digit);
                po_check_folder(check, messages);
        }
        for (uint32_t digit = 0; digit < 16; digit++) {
                g_autofree char *attachments = po_profile_attachment_folder(check->profile, digit);
                po_check_folder(check, attachments);
        }
}

/* --- tree walk: names, P1 debris, misplaced messages, lock files -------- */

/* The folder message @name belongs in, or NULL when it is not a message. */
static char *po_check_message_home(const PoCheck *check, const char *name)
{
        uint32_t number;
        if (po_naming_parse_message_basename(name, PO_FOLDER_MESSAGE, &number))
                return po_profile_message_folder(check->profile, number);
        if (po_naming_parse_message_basename(name, PO_FOLDER_ATTACHMENT, &number))
                return po_profile_attachment_folder(check->profile, number);
        return NULL;
}

static bool po_check_under(const char *relpath, const char *folder)
{
        gsize len = strlen(folder);
        return g_ascii_strncasecmp(relpath, folder, len) == 0 && relpath[len] == '/';
}

static void po_check_file(PoCheck *check, const char *relpath, const char *name,
                          const char *parent, const struct stat *st)
{
        PoClass class;
        po_classify(check->profile, relpath, &class);
        switch (class.role) {
        case PO_ROLE_MESSAGE:
        case PO_ROLE_ENVELOPE:
        case PO_ROLE_ATTACHMENT:
                if (!check->have_messages || class.message_number > check->max_message)
                        check->max_message = class.message_number;
                check->have_messages = true;
                break;
        case PO_ROLE_SESSION_LOCK:
                g_ptr_array_add(check->lock_files, g_strdup(relpath));
                return;
        default: {
                bool in_hashed = po_check_under(relpath, PO_FOLDER_MESSAGE) ||
                                 po_check_under(relpath, PO_FOLDER_ATTACHMENT);
                g_autofree char *home = in_hashed ? po_check_message_home(check, name) : NULL;
                if (home)
                        po_check_report(check, PO_CHECK_FIX_NONE, "misplaced-message", relpath,
                                        "belongs in %s (the last hex digit of its number, Q87409)",
                                        home);
                break;
        }
        }
        if (g_ascii_strcasecmp(parent, po_profile_lock_folder(check->profile)) == 0 &&
            st->st_mtime < check->now - PO_CHECK_P1_MAX_AGE) {
                PoCheckProblem *problem =
                        po_check_report(check, PO_CHECK_FIX_QUARANTINE, "old-p1-file", relpath,
                                        "%.1f days old; P1 files older than two days are debris "
                                        "(Q237695)",
                                        (double)(check->now - st->st_mtime) / 86400.0);
                problem->dev = st->st_dev;
                problem->ino = st->st_ino;
        }
}

static void po_check_walk(PoCheck *check, const char *reldir, int depth)
{
        g_autoptr(DIR) dir = po_check_opendir(check, reldir);
        if (dir == NULL)
                return; /* a missing folder is reported by the layout check */
        const char *name;
        while ((name = po_check_readdir(dir)) != NULL) {
                /* mailbagfs's lease file and trail, on the raw share: not
                 * mail. */
                if (depth == 0 && (strcmp(name, PO_STATUS_LEASE_FILE) == 0 ||
                                   strcmp(name, PO_STATUS_TRAIL_DIR) == 0))
                        continue;
                g_autofree char *rel = reldir[0] ? g_strconcat(reldir, "/", name, NULL)
                                                 : g_strdup(name);
                po_check_progress(check);
                if (po_naming_has_lower(name))
                        po_check_report(check, PO_CHECK_FIX_NONE, "lower-case-name", rel,
                                        "names must be upper case; lower-case names break the "
                                        "lock test (Q129456, Q152903)");
                struct stat st;
                if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (S_ISDIR(st.st_mode)) {
                        if (depth < PO_CHECK_WALK_DEPTH)
                                po_check_walk(check, rel, depth + 1);
                } else if (S_ISREG(st.st_mode)) {
                        const char *slash = strrchr(rel, '/');
                        g_autofree char *parent = slash ? g_strndup(rel, slash - rel) : g_strdup("");
                        po_check_file(check, rel, name, parent, &st);
                } else {
                        /* A postoffice holds folders and files; a link
                         * could lead a program out of it, a FIFO hang it. */
                        po_check_report_not_file(check, rel, 0, &st);
                }
        }
}

/* --- mailbags ---------------------------------------------------------- */

/* Upper-case base names of the files in @folder with extension @ext. */
static void po_check_list_mailbags(PoCheck *check, const char *folder, const char *ext,
                                   GHashTable *names)
{
        g_autoptr(DIR) dir = po_check_opendir(check, folder);
        const char *name;
        while ((name = po_check_readdir(dir)) != NULL) {
                const char *dot = strrchr(name, '.');
                if (dot && g_ascii_strcasecmp(dot + 1, ext) == 0 &&
                    po_naming_is_valid_base(name, dot - name))
                        g_hash_table_add(names, g_ascii_strup(name, dot - name));
        }
}

/* @canonical ("KEY/INQUEUE3.KEY") as its file is named on disk, found
 * case-insensitively; @canonical itself when there is none. */
static char *po_check_find_file(PoCheck *check, char *canonical)
{
        g_autofree char *owned = canonical;
        g_autofree char *folder = g_path_get_dirname(canonical);
        g_autofree char *wanted = g_path_get_basename(canonical);
        g_autoptr(DIR) dir = po_check_opendir(check, folder);
        const char *name;
        while ((name = po_check_readdir(dir)) != NULL)
                if (g_ascii_strcasecmp(name, wanted) == 0)
                        return g_strconcat(folder, "/", name, NULL);
        return g_steal_pointer(&owned);
}

/* Opens @relpath to read, without waiting (a FIFO), and only if it is
 * still the regular file @st that was checked: the descriptor, or -errno
 * (-EINVAL: something else is there now). */
static int po_check_open_read(const PoCheck *check, const char *relpath, const struct stat *st)
{
        int fd = po_check_openat(check->root_fd, relpath, O_RDONLY | O_NONBLOCK, 0);
        if (fd < 0)
                return fd;
        struct stat now;
        if (fstat(fd, &now) < 0 || !S_ISREG(now.st_mode) ||
            (st && (now.st_dev != st->st_dev || now.st_ino != st->st_ino))) {
                close(fd);
                return -EINVAL;
        }
        return fd;
}

static const char *po_check_open_error(int result)
{
        return result == -EINVAL ? "changed while po-check read it: no longer the file checked"
                                 : g_strerror(-result);
}

static bool po_check_key_records(PoCheck *check, const char *key_rel, const struct stat *key_st,
                                 const struct stat *mbg_st, PoMailbagStats *stats)
{
        g_autoptr(GError) error = NULL;
        uint8_t key[PO_MAILBAG_KEY_SIZE];
        po_auto_fd fd = po_check_open_read(check, key_rel, key_st);
        if (fd < 0 || !po_file_pread_exact(fd, key, sizeof key, 0, key_rel, &error)) {
                po_check_report(check, PO_CHECK_FIX_NONE, "unreadable", key_rel, "%s",
                                error ? po_check_detail(error, key_rel) : po_check_open_error(fd));
                return false;
        }
        po_mailbag_key_stats(key, mbg_st->st_size / PO_MAILBAG_RECORD_SIZE, stats);
        return true;
}

/* Through mailbagfs, opening a queue's KEY is a session (the gateway's
 * protocol): po-check would wait behind, or hold up, the programs at work.
 * The daemon's records line counts the same bitmap without a lease. False
 * when it has none (then the KEY is read). free_beyond_total stays 0: the
 * line does not carry it. */
static bool po_check_daemon_records(PoCheck *check, const char *key_rel, PoMailbagStats *stats)
{
        g_autoptr(GError) error = NULL;
        po_auto_fd fd = po_check_openat(check->root_fd, key_rel, O_PATH, 0);
        if (fd < 0)
                return false;
        char key_path[PO_CHECK_FD_PATH_MAX];
        po_check_fd_path(fd, key_path);
        g_autoptr(GPtrArray) lines = status_attr_read_lines(key_path, PO_STATUS_ATTR_RECORDS, &error);
        if (lines == NULL || lines->len == 0)
                return false;
        const PoStatusLine *line = lines->pdata[0];
        /* "records NAME ..." now, "NAME ..." from older daemons. */
        bool current = g_strcmp0(po_status_line_word(line, 0), PO_STATUS_WORD_RECORDS) == 0;
        if (g_strcmp0(po_status_line_word(line, current ? 2 : 1), PO_STATUS_STATE_CORRUPT) == 0 ||
            g_strcmp0(po_status_line_word(line, 1), "corrupt:") == 0) {
                const char *message = po_status_line_field(line, PO_STATUS_FIELD_MESSAGE);
                po_check_report(check, PO_CHECK_FIX_NONE, "unreadable", key_rel, "mailbagfs: %s",
                                message ? message : "the mailbag is corrupt");
                return true;
        }
        guint64 live, total, percent;
        if (!po_status_line_field_uint64(line, PO_STATUS_FIELD_LIVE, &live) ||
            !po_status_line_field_uint64(line, PO_STATUS_FIELD_TOTAL, &total) ||
            !po_status_line_field_uint64(line, PO_STATUS_FIELD_PERCENT, &percent))
                return false;
        stats->live = (unsigned)MIN(live, G_MAXUINT);
        stats->total = (unsigned)MIN(total, G_MAXUINT);
        stats->percent = (unsigned)MIN(percent, G_MAXUINT);
        return true;
}

static void po_check_one_mailbag(PoCheck *check, const char *base)
{
        g_autofree char *key_rel = po_check_find_file(check, po_profile_key_path(check->profile, base));
        g_autofree char *mbg_rel = po_check_find_file(check, po_profile_mbg_path(check->profile, base));
        struct stat key_st, mbg_st;
        int key_found = po_check_lstat(check, key_rel, &key_st);
        int mbg_found = po_check_lstat(check, mbg_rel, &mbg_st);
        bool odd_key = po_check_is_other(key_found, &key_st, S_IFREG);
        bool odd_mbg = po_check_is_other(mbg_found, &mbg_st, S_IFREG);
        if (odd_key)
                po_check_report_not_file(check, key_rel, key_found, &key_st);
        if (odd_mbg)
                po_check_report_not_file(check, mbg_rel, mbg_found, &mbg_st);
        if (odd_key || odd_mbg)
                return;
        bool have_key = key_found == 0;
        bool have_mbg = mbg_found == 0;
        if (!have_key || !have_mbg) {
                po_check_report(check, PO_CHECK_FIX_NONE, "mailbag-unpaired",
                                have_key ? mbg_rel : key_rel, "missing, but %s exists",
                                have_key ? key_rel : mbg_rel);
                return;
        }
        g_autoptr(GError) error = NULL;
        bool sizes_ok = true;
        if (!po_mailbag_check_key_size(key_st.st_size, key_rel, &error)) {
                po_check_report(check, PO_CHECK_FIX_NONE, "key-size", key_rel, "%s", po_check_detail(error, key_rel));
                g_clear_error(&error);
                sizes_ok = false;
        }
        if (mbg_st.st_size > PO_MAILBAG_MBG_MAX_SIZE) {
                po_check_report(check, PO_CHECK_FIX_NONE, "mailbag-full", mbg_rel,
                                "%" G_GINT64_FORMAT " slots, over the %d-record limit (Q163020)",
                                (gint64)(mbg_st.st_size / PO_MAILBAG_RECORD_SIZE),
                                PO_MAILBAG_MAX_RECORDS);
                return;
        }
        if (!po_mailbag_check_mbg_size(mbg_st.st_size, mbg_rel, &error)) {
                po_check_report(check, PO_CHECK_FIX_NONE, "mbg-size", mbg_rel, "%s", po_check_detail(error, mbg_rel));
                return;
        }
        if (!sizes_ok)
                return;
        PoMailbagStats stats = { 0 };
        bool counted = check->mailbagfs && po_profile_is_queue(check->profile, base) &&
                       po_check_daemon_records(check, key_rel, &stats);
        if (!counted && !po_check_key_records(check, key_rel, &key_st, &mbg_st, &stats))
                return;
        if (stats.live >= PO_MAILBAG_MAX_RECORDS)
                po_check_report(check, PO_CHECK_FIX_NONE, "mailbag-full", mbg_rel,
                                "%u of %d records in use: deliveries fail with [008] (Q163020, Q237695)",
                                stats.live, PO_MAILBAG_MAX_RECORDS);
        else if (stats.live >= PO_CHECK_NEAR_FULL)
                po_check_report(check, PO_CHECK_FIX_NONE, "mailbag-near-full", mbg_rel,
                                "%u of %d records in use (%u%%)", stats.live,
                                PO_MAILBAG_MAX_RECORDS, stats.percent);
        if (stats.free_beyond_total > 0)
                po_check_report(check, PO_CHECK_FIX_NONE, "key-mbg-disagree", key_rel,
                                "%u free-slot bits past the %u records of %s",
                                stats.free_beyond_total, stats.total, mbg_rel);
}

static int po_check_compare_names(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void po_check_mailbags(PoCheck *check)
{
        g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        po_check_list_mailbags(check, PO_FOLDER_KEY, PO_FOLDER_KEY, names);
        po_check_list_mailbags(check, PO_FOLDER_MBG, PO_FOLDER_MBG, names);
        const char *const *queues = po_profile_queues(check->profile);
        for (gsize i = 0; queues[i]; i++) {
                if (g_hash_table_contains(names, queues[i]))
                        continue;
                g_autofree char *key_rel = po_profile_key_path(check->profile, queues[i]);
                po_check_report(check, PO_CHECK_FIX_NONE, "missing-mailbag", key_rel,
                                "queue %s declared by the profile has no mailbag", queues[i]);
        }
        g_autofree const char **sorted = (const char **)g_hash_table_get_keys_as_array(names, NULL);
        qsort(sorted, g_hash_table_size(names), sizeof *sorted, po_check_compare_names);
        for (guint i = 0; i < g_hash_table_size(names); i++)
                po_check_one_mailbag(check, sorted[i]);
}

/* --- GLB and NME ------------------------------------------------------- */

static bool po_check_read(PoCheck *check, const char *relpath, gsize max, guint8 **data,
                          gsize *len)
{
        struct stat st;
        int found = po_check_lstat(check, relpath, &st);
        if (found == -ENOENT) {
                po_check_report(check, PO_CHECK_FIX_NONE, "missing-file", relpath, "file is missing");
                return false;
        }
        if (po_check_is_other(found, &st, S_IFREG)) {
                po_check_report_not_file(check, relpath, found, &st);
                return false;
        }
        g_autoptr(GError) error = NULL;
        po_auto_fd fd = found < 0 ? found : po_check_open_read(check, relpath, &st);
        if (fd >= 0 && po_file_read_fd(fd, max, relpath, data, len, &error))
                return true;
        po_check_report(check, PO_CHECK_FIX_NONE, "unreadable", relpath, "%s",
                        error ? po_check_detail(error, relpath) : po_check_open_error(fd));
        return false;
}

static void po_check_access(PoCheck *check)
{
        static const char *const files[] = { "GLB/ACCESS.GLB", "GLB/ACCESS2.GLB", "GLB/ACCESS3.GLB" };
        guint8 *data[3] = { NULL, NULL, NULL };
        gsize len[3] = { 0 };
        unsigned count[3] = { 0 };
        bool ok = true;
        for (int i = 0; i < 3; i++) {
                g_autoptr(GError) error = NULL;
                if (!po_check_read(check, files[i], 64 * 1024 * 1024, &data[i], &len[i])) {
                        ok = false;
                } else if (!po_glb_access_count((PoGlbAccessFile)i, len[i], files[i], &count[i],
                                                &error)) {
                        po_check_report(check, PO_CHECK_FIX_NONE, "glb-size", files[i], "%s",
                                        po_check_detail(error, files[i]));
                        ok = false;
                }
        }
        for (int i = 1; ok && i < 3; i++)
                if (count[i] != count[0])
                        po_check_report(check, PO_CHECK_FIX_NONE, "access-count", files[i],
                                        "%u records, but ACCESS.GLB has %u: the parallel "
                                        "user arrays disagree (Q87402, Q135932)", count[i], count[0]);
        unsigned reported = 0;
        for (unsigned u = 0; data[0] && u < len[0] / PO_GLB_ACCESS_RECORD_SIZE; u++) {
                char alias[PO_GLB_ACCESS_ALIAS_SIZE + 1];
                gsize bad = 0;
                if (po_glb_access_alias(data[0], len[0], u, alias, &bad) != PO_GLB_ALIAS_UNPRINTABLE)
                        continue;
                if (reported++ < PO_CHECK_ALIAS_REPORTS)
                        po_check_report(check, PO_CHECK_FIX_NONE, "access-alias", files[0],
                                        "offset 0x%" G_GSIZE_MODIFIER "x: record %u alias \"%s\" "
                                        "has unprintable characters (Listuser damage sign, Q135932)",
                                        bad, u, alias);
        }
        for (int i = 0; i < 3; i++)
                g_free(data[i]);
}

static void po_check_glb(PoCheck *check)
{
        g_autoptr(DIR) dir = po_check_opendir(check, "GLB");
        const char *name;
        while ((name = po_check_readdir(dir)) != NULL) {
                g_autofree char *rel = g_strconcat("GLB/", name, NULL);
                struct stat st;
                g_autoptr(GError) error = NULL;
                if (g_str_has_prefix(name, "ACCESS") || g_str_has_prefix(name, "access"))
                        continue; /* po_check_access */
                if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISREG(st.st_mode)) {
                        /* A folder named as a GLB file: other types are
                         * reported by the walk, CONTROL.GLB when read. */
                        if (S_ISDIR(st.st_mode) && po_glb_fresh_size(name) >= 0 &&
                            strcmp(name, "CONTROL.GLB") != 0)
                                po_check_report_not_file(check, rel, 0, &st);
                        continue;
                }
                if (!po_glb_check_size(name, st.st_size, rel, &error))
                        po_check_report(check, PO_CHECK_FIX_NONE, "glb-size", rel, "%s", po_check_detail(error, rel));
        }
        po_check_access(check);

        g_autofree guint8 *data = NULL;
        gsize len = 0;
        PoControl control;
        g_autoptr(GError) error = NULL;
        if (!po_check_read(check, "GLB/CONTROL.GLB", PO_GLB_CONTROL_SIZE + 64, &data, &len))
                return;
        if (!po_glb_control_parse(data, len, "GLB/CONTROL.GLB", &control, &error))
                return; /* reported by the size check above */
        if (check->have_messages && control.next_message <= check->max_message)
                po_check_report(check, PO_CHECK_FIX_NONE, "control-behind", "GLB/CONTROL.GLB",
                                "next message number %08X is not above the highest existing "
                                "message %08X: new mail would reuse a name (Q99204)",
                                control.next_message, check->max_message);
}

static void po_check_nme(PoCheck *check)
{
        g_autoptr(DIR) dir = po_check_opendir(check, "NME");
        const char *name;
        while ((name = po_check_readdir(dir)) != NULL) {
                const char *dot = strrchr(name, '.');
                if (dot == NULL || g_ascii_strcasecmp(dot, ".NME") != 0)
                        continue;
                g_autofree char *rel = g_strconcat("NME/", name, NULL);
                struct stat st;
                unsigned count;
                g_autoptr(GError) error = NULL;
                if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                if (!S_ISREG(st.st_mode)) {
                        po_check_report_not_file(check, rel, 0, &st);
                        continue;
                }
                if (!po_glb_nme_count(st.st_size, rel, &count, &error))
                        po_check_report(check, PO_CHECK_FIX_NONE, "nme-size", rel, "%s", po_check_detail(error, rel));
        }
}

/* --- lock files -------------------------------------------------------- */

/* Every file some process on this host has open, by device and inode.
 * Processes of other users are skipped when /proc hides them (EACCES). */
static void po_check_scan_open_files(PoCheck *check)
{
        check->open_files_scanned = true;
        /* po-check's own descriptors (the lock file being looked at) hold
         * nothing. */
        g_autofree char *self = g_strdup_printf("%d", (int)getpid());
        g_autoptr(GDir) proc = g_dir_open("/proc", 0, NULL);
        const char *pid;
        while (proc && (pid = g_dir_read_name(proc)) != NULL) {
                if (!g_ascii_isdigit(pid[0]) || strcmp(pid, self) == 0)
                        continue;
                g_autofree char *fd_dir = g_strconcat("/proc/", pid, "/fd", NULL);
                g_autoptr(GDir) fds = g_dir_open(fd_dir, 0, NULL);
                const char *fd;
                while (fds && (fd = g_dir_read_name(fds)) != NULL) {
                        g_autofree char *link = g_strconcat(fd_dir, "/", fd, NULL);
                        struct stat st;
                        if (stat(link, &st) == 0 && S_ISREG(st.st_mode))
                                g_hash_table_add(check->open_files,
                                                 g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev,
                                                                 (uintmax_t)st.st_ino));
                }
        }
}

typedef enum {
        PO_CHECK_HOLDER_UNKNOWN,  /* not through mailbagfs, or not a lease it keeps */
        PO_CHECK_HOLDER_NONE,     /* mailbagfs: every lease of the file is free */
        PO_CHECK_HOLDER_LIVE,     /* mailbagfs: a process holds it */
        PO_CHECK_HOLDER_INHERITED, /* mailbagfs: found at start, creator unknown */
} PoCheckHolder;

/* Through mailbagfs the daemon names the holders of a lock file's leases
 * (PO_STATUS_ATTR_LOCK, lease lines); elsewhere (ENODATA, ENOTSUP) nothing
 * is known. A value that does not parse is treated as unknown, never as
 * free: a lock wrongly called stale could be quarantined under a session. */
static PoCheckHolder po_check_xattr_holder(int fd)
{
        char path[PO_CHECK_FD_PATH_MAX];
        po_check_fd_path(fd, path);
        g_autoptr(GError) error = NULL;
        g_autoptr(GPtrArray) lines = status_attr_read_lines(path, PO_STATUS_ATTR_LOCK, &error);
        if (lines == NULL)
                return PO_CHECK_HOLDER_UNKNOWN;
        PoCheckHolder holder = PO_CHECK_HOLDER_UNKNOWN;
        for (guint i = 0; i < lines->len; i++) {
                PoStatusLease lease;
                if (!po_status_line_as_lease(lines->pdata[i], &lease))
                        continue;
                const char *creator = po_status_line_field(lines->pdata[i], PO_STATUS_FIELD_HOLDER);
                /* A dead holder's hold is reclaimed by the daemon at once,
                 * so a held lease with a known holder means a live one. */
                if (lease.held && g_strcmp0(creator, PO_STATUS_HOLDER_UNKNOWN) != 0)
                        return PO_CHECK_HOLDER_LIVE;
                if (lease.held)
                        holder = PO_CHECK_HOLDER_INHERITED;
                else if (holder == PO_CHECK_HOLDER_UNKNOWN)
                        holder = PO_CHECK_HOLDER_NONE;
        }
        return holder;
}

/* A lock file is stale when no process on this host has it open and the
 * mount (if mailbagfs) does not name a live holder. Limit: on a plain
 * directory a holder on another machine (through SMB or NetWare) is
 * invisible, so its lock file looks stale; run po-check on the file server
 * or through the mailbagfs mount. */
static void po_check_locks(PoCheck *check)
{
        for (guint i = 0; i < check->lock_files->len; i++) {
                const char *rel = check->lock_files->pdata[i];
                po_auto_fd fd = po_check_openat(check->root_fd, rel, O_PATH, 0);
                struct stat st;
                if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                PoCheckHolder holder = check->mailbagfs ? po_check_xattr_holder(fd)
                                                        : PO_CHECK_HOLDER_UNKNOWN;
                if (holder == PO_CHECK_HOLDER_LIVE)
                        continue;
                if (!check->open_files_scanned)
                        po_check_scan_open_files(check);
                g_autofree char *id = g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev,
                                                      (uintmax_t)st.st_ino);
                if (g_hash_table_contains(check->open_files, id))
                        continue;
                PoClass class;
                po_classify(check->profile, rel, &class);
                /* The daemon keeps the session of a lock file it found at
                 * start for its unknown creator, who may be on another
                 * host: ending it is an operator's decision, not --fix's. */
                if (holder == PO_CHECK_HOLDER_INHERITED) {
                        po_check_report(check, PO_CHECK_FIX_NONE, "stale-lock", rel,
                                        "%s lock of mailbag %s that mailbagfs found at start and "
                                        "holds for its unknown creator; if no program on any host "
                                        "uses it, end the hold with setfattr -n %s -v 1 (Q128913)",
                                        po_lock_protocol_to_string(class.lock_protocol), class.name,
                                        PO_STATUS_ATTR_BREAK);
                        continue;
                }
                PoCheckProblem *problem =
                        po_check_report(check, PO_CHECK_FIX_QUARANTINE, "stale-lock", rel,
                                        "%s lock of mailbag %s with no process holding it%s "
                                        "(Q119642, Q128913)",
                                        po_lock_protocol_to_string(class.lock_protocol),
                                        class.name,
                                        holder == PO_CHECK_HOLDER_NONE ? " (mailbagfs: no holder)"
                                                                       : " on this host");
                problem->dev = st.st_dev;
                problem->ino = st.st_ino;
        }
}

/* --- fixes ------------------------------------------------------------- */

/* Why @relpath, a folder --fix needs, cannot be used (openat2 said
 * @result): a link there or on the way is never followed. */
static void po_check_set_folder_error(const PoCheck *check, GError **error, const char *relpath,
                                      int result)
{
        struct stat st;
        if (result == -ELOOP)
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_LOOP,
                            "%s %s; po-check follows no link on the share: left alone", relpath,
                            po_check_lstat(check, relpath, &st) == 0 && S_ISLNK(st.st_mode)
                            ? "is a symbolic link" : "has a symbolic link on its path");
        else if (result == -ENOTDIR)
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_NOTDIR,
                            "%s is not a folder: left alone", relpath);
        else
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-result), "%s: %s",
                            relpath, g_strerror(-result));
}

/* The folder @relpath (O_PATH), made one component at a time where
 * missing, each step opened beneath the one before without following a
 * link: -1 with @error set when one is in the way. */
static int po_check_make_folders(const PoCheck *check, const char *relpath, GError **error)
{
        g_auto(GStrv) parts = g_strsplit(relpath, "/", -1);
        g_autoptr(GString) done = g_string_new(NULL);
        int dir = check->root_fd;
        for (char **part = parts; *part; part++) {
                if (**part == '\0')
                        continue;
                if (done->len)
                        g_string_append_c(done, '/');
                g_string_append(done, *part);
                int made = mkdirat(dir, *part, 0755) < 0 ? -errno : 0;
                int next = po_check_openat(dir, *part, O_PATH | O_DIRECTORY, 0);
                if (dir != check->root_fd)
                        close(dir);
                if (next < 0) {
                        po_check_set_folder_error(check, error, done->str,
                                                  made < 0 && made != -EEXIST ? made : next);
                        return -1;
                }
                dir = next;
        }
        if (dir == check->root_fd && (dir = fcntl(dir, F_DUPFD_CLOEXEC, 0)) < 0)
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "dup: %s",
                            g_strerror(errno));
        return dir;
}

/* Creates the marker @name in the folder @dir (@relpath, for messages),
 * only where nothing is: a marker of the wrong size is left for a human,
 * and a link there is never written through. */
static bool po_check_create_marker(int dir, const char *name, const char *relpath,
                                   GError **error)
{
        static const uint8_t marker_byte = 0; /* content unknown (inferred) */
        po_auto_fd fd = po_check_openat(dir, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd == -EEXIST) {
                struct stat st;
                bool known = fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
                if (known && S_ISLNK(st.st_mode))
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                                    "a symbolic link is there; po-check follows no link on the "
                                    "share: left alone");
                else if (known && !S_ISREG(st.st_mode))
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                                    "%s is there: left alone", po_check_type_name(st.st_mode));
                else
                        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                                    "a file of the wrong size is there; left alone");
                return false;
        }
        if (fd < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(-fd), "create: %s",
                            g_strerror(-fd));
                return false;
        }
        if (!po_file_pwrite_all(fd, &marker_byte, 1, 0, relpath, error))
                return false;
        if (fchmod(fd, 0444) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "chmod: %s", g_strerror(errno));
                return false;
        }
        return true;
}

/* Moves the file of @problem to QUARANT/ (same relative path) if it is
 * still the file that was checked; the rename is between two folders
 * opened without following a link, and never replaces anything. */
static char *po_check_quarantine(PoCheck *check, const PoCheckProblem *problem, GError **error)
{
        g_autofree char *parent = g_path_get_dirname(problem->file);
        g_autofree char *base = g_path_get_basename(problem->file);
        g_autofree char *target_rel = g_build_filename(PO_CHECK_QUARANTINE, problem->file, NULL);
        g_autofree char *target_parent = g_path_get_dirname(target_rel);
        po_auto_fd from = po_check_openat(check->root_fd, strcmp(parent, ".") == 0 ? "" : parent,
                                          O_PATH | O_DIRECTORY, 0);
        if (from < 0) {
                g_autoptr(GError) why = NULL;
                po_check_set_folder_error(check, &why, parent, from);
                g_set_error(error, G_FILE_ERROR, why->code, "cannot move to %s: %s", target_rel,
                            why->message);
                return NULL;
        }
        struct stat st;
        if (fstatat(from, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "cannot move to %s: %s", target_rel, g_strerror(errno));
                return NULL;
        }
        if (!S_ISREG(st.st_mode) || st.st_dev != problem->dev || st.st_ino != problem->ino) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                            "not the file that was checked any more (%s is there now): left alone",
                            po_check_type_name(st.st_mode));
                return NULL;
        }
        g_autoptr(GError) why = NULL;
        po_auto_fd to = po_check_make_folders(check, target_parent, &why);
        if (to < 0) {
                g_set_error(error, G_FILE_ERROR, why->code, "cannot move to %s: %s", target_rel,
                            why->message);
                return NULL;
        }
        if (renameat2(from, base, to, base, RENAME_NOREPLACE) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "cannot move to %s: %s", target_rel, g_strerror(errno));
                return NULL;
        }
        return g_strdup_printf("moved to %s", target_rel);
}

static char *po_check_fix_one(PoCheck *check, const PoCheckProblem *problem, GError **error)
{
        const char *marker = po_profile_marker(check->profile);
        switch (problem->fix) {
        case PO_CHECK_FIX_NONE:
                return NULL;
        case PO_CHECK_FIX_CREATE_FOLDER: {
                po_auto_fd dir = po_check_make_folders(check, problem->file, error);
                if (dir < 0)
                        return NULL;
                g_autofree char *marker_rel = g_build_filename(problem->file, marker, NULL);
                if (!po_check_create_marker(dir, marker, marker_rel, error))
                        return NULL;
                return g_strdup("created the folder and its marker");
        }
        case PO_CHECK_FIX_CREATE_MARKER: {
                g_autofree char *parent = g_path_get_dirname(problem->file);
                g_autofree char *base = g_path_get_basename(problem->file);
                po_auto_fd dir = po_check_openat(check->root_fd,
                                                 strcmp(parent, ".") == 0 ? "" : parent,
                                                 O_PATH | O_DIRECTORY, 0);
                if (dir < 0) {
                        po_check_set_folder_error(check, error, parent, dir);
                        return NULL;
                }
                if (!po_check_create_marker(dir, base, problem->file, error))
                        return NULL;
                return g_strdup("created the 1-byte read-only marker");
        }
        case PO_CHECK_FIX_QUARANTINE:
                return po_check_quarantine(check, problem, error);
        }
        return NULL;
}

static void po_check_fix(PoCheck *check, bool json)
{
        for (guint i = 0; i < check->problems->len; i++) {
                PoCheckProblem *problem = check->problems->pdata[i];
                g_autoptr(GError) error = NULL;
                if (problem->fix == PO_CHECK_FIX_NONE)
                        continue;
                problem->action = po_check_fix_one(check, problem, &error);
                FILE *out = json ? stderr : stdout;
                g_autofree char *file = po_status_escape_controls(problem->file);
                g_autofree char *said = po_status_escape_controls(problem->action ? problem->action
                                                        : error ? error->message : "");
                if (problem->action)
                        fprintf(out, "po-check: fixed: %s: %s: %s\n", problem->kind, file, said);
                else if (error)
                        fprintf(out, "po-check: not fixed: %s: %s: %s\n", problem->kind, file,
                                said);
        }
}

/* --- output ------------------------------------------------------------ */

static void po_check_print(const GPtrArray *problems, bool json)
{
        if (!json) {
                for (guint i = 0; i < problems->len; i++) {
                        const PoCheckProblem *problem = problems->pdata[i];
                        if (problem->action != NULL)
                                continue;
                        g_autofree char *file = po_status_escape_controls(problem->file);
                        g_autofree char *detail = po_status_escape_controls(problem->detail);
                        printf("po-check: %s: %s: %s\n", problem->kind, file, detail);
                }
                return;
        }
        g_autoptr(JsonBuilder) builder = json_builder_new();
        json_builder_begin_array(builder);
        for (guint i = 0; i < problems->len; i++) {
                const PoCheckProblem *problem = problems->pdata[i];
                json_builder_begin_object(builder);
                json_builder_set_member_name(builder, "kind");
                tool_json_add_string(builder, problem->kind);
                json_builder_set_member_name(builder, "file");
                tool_json_add_string(builder, problem->file);
                json_builder_set_member_name(builder, "detail");
                tool_json_add_string(builder, problem->detail);
                for (char **member = problem->members; member && member[0] && member[1];
                     member += 2) {
                        json_builder_set_member_name(builder, member[0]);
                        tool_json_add_string(builder, member[1]);
                }
                json_builder_set_member_name(builder, "fixed");
                json_builder_add_boolean_value(builder, problem->action != NULL);
                json_builder_end_object(builder);
        }
        json_builder_end_array(builder);
        tool_json_print(builder);
}

/* --- Samba ------------------------------------------------------------ */

/* --samba, given with or without SMB.CONF. */
typedef struct {
        bool given;
        char *smb_conf; /* NULL: testparm's default */
} PoCheckSambaOption;

static void po_check_samba_option_clear(PoCheckSambaOption *option)
{
        g_clear_pointer(&option->smb_conf, g_free);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(PoCheckSambaOption, po_check_samba_option_clear)

static gboolean po_check_take_samba(G_GNUC_UNUSED const char *name, const char *value,
                                    gpointer data, G_GNUC_UNUSED GError **error)
{
        PoCheckSambaOption *option = data;
        option->given = true;
        g_free(option->smb_conf);
        option->smb_conf = g_strdup(value);
        return TRUE;
}

/* A finding as a problem: FILE is "[SHARE]", the finding's fields are
 * more JSON members. */
static PoCheckProblem *po_check_samba_problem(const PoSambaFinding *finding)
{
        const char *const pairs[] = {
                "share", finding->share,     "path", finding->path,
                "mount", finding->mount,     "backing", finding->backing,
                "setting", finding->setting, "found", finding->found,
                "needed", finding->needed,
        };
        g_autoptr(GStrvBuilder) members = g_strv_builder_new();
        for (gsize i = 0; i < G_N_ELEMENTS(pairs); i += 2) {
                if (pairs[i + 1] == NULL)
                        continue;
                g_strv_builder_add(members, pairs[i]);
                g_strv_builder_add(members, pairs[i + 1]);
        }
        PoCheckProblem *problem = g_new0(PoCheckProblem, 1);
        problem->kind = g_strdup(finding->kind);
        problem->file = g_strdup_printf("[%s]", finding->share);
        problem->detail = g_strdup(finding->detail);
        problem->members = g_strv_builder_end(members);
        return problem;
}

/* po-check --samba: 0 when every share that reaches a mount is right (or
 * none does: said on stderr), 1 with findings, 2 when testparm or the
 * mount table cannot be read. */
static int po_check_samba(const char *smb_conf, bool json)
{
        g_autoptr(GError) error = NULL;
        g_autoptr(PoSambaReport) report = po_samba_run(smb_conf, &error);
        if (report == NULL) {
                g_autofree char *said = po_status_escape_controls(error->message);
                fprintf(stderr, "po-check: --samba: %s\n", said);
                return 2;
        }
        for (guint i = 0; i < report->notes->len; i++) {
                g_autofree char *note = po_status_escape_controls(report->notes->pdata[i]);
                fprintf(stderr, "po-check: warning: %s\n", note);
        }
        if (report->shares_reaching == 0)
                fprintf(stderr, "po-check: no Samba share reaches a mailbagfs mount or its backing "
                        "directory (%u shares, %u mailbagfs mounts)\n", report->shares,
                        report->mounts);
        g_autoptr(GPtrArray) problems =
                g_ptr_array_new_with_free_func((GDestroyNotify)po_check_problem_free);
        for (guint i = 0; i < report->findings->len; i++)
                g_ptr_array_add(problems, po_check_samba_problem(report->findings->pdata[i]));
        po_check_print(problems, json);
        return problems->len ? 1 : 0;
}

#define PO_CHECK_USAGE \
        "usage: po-check DIR [--json] [--fix] [--profile PATH]\n" \
        "       po-check --samba [SMB.CONF] [--json]\n"

int main(int argc, char **argv)
{
        gboolean json = FALSE, fix = FALSE;
        g_autofree char *profile_path = NULL;
        g_auto(PoCheckSambaOption) samba = { 0 };
        GOptionEntry entries[] = {
                { "json", 'j', 0, G_OPTION_ARG_NONE, &json, "Print the problems as a JSON array", NULL },
                { "fix", 0, 0, G_OPTION_ARG_NONE, &fix,
                  "Do the safe repairs (create folders and markers, quarantine P1 debris and stale locks)",
                  NULL },
                { "profile", 'p', 0, G_OPTION_ARG_FILENAME, &profile_path, "Profile file (default: built in)", "PATH" },
                { "samba", 0, G_OPTION_FLAG_OPTIONAL_ARG | G_OPTION_FLAG_FILENAME,
                  G_OPTION_ARG_CALLBACK, (gpointer)po_check_take_samba,
                  "Check instead the Samba shares that reach mailbagfs mounts, as testparm "
                  "reads SMB.CONF (default: Samba's own file)", "[SMB.CONF]" },
                G_OPTION_ENTRY_NULL,
        };
        g_autoptr(GOptionContext) context = g_option_context_new(
                "DIR - check a postoffice (or, with --samba, a Samba configuration)");
        GOptionGroup *group = g_option_group_new("po-check", "", "", &samba, NULL);
        g_option_group_add_entries(group, entries);
        g_option_context_set_main_group(context, group);
        g_autoptr(GError) error = NULL;
        bool parsed = g_option_context_parse(context, &argc, &argv, &error);
        if (parsed && samba.given && (argc != 1 || fix || profile_path)) {
                fprintf(stderr,
                        "po-check: --samba takes no DIR, --fix or --profile\n" PO_CHECK_USAGE);
                return 2;
        }
        if (parsed && samba.given)
                return po_check_samba(samba.smb_conf, json);
        if (!parsed || argc != 2) {
                fprintf(stderr, "po-check: %s\n" PO_CHECK_USAGE,
                        error ? error->message : "expected one postoffice directory");
                return 2;
        }
        g_autoptr(PoProfile) profile = profile_path ? po_profile_load(profile_path, &error)
                                                    : po_profile_new_default();
        if (profile == NULL) {
                fprintf(stderr, "po-check: %s\n", error->message);
                return 2;
        }
        /* DIR is the operator's word: opened once, as given; everything
         * beneath it is reached from this descriptor. */
        po_auto_fd root_fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) {
                fprintf(stderr, "po-check: %s: not a directory\n", argv[1]);
                return 2;
        }
        po_auto_fd probe = po_check_openat(root_fd, "", O_PATH | O_DIRECTORY, 0);
        if (probe < 0) {
                fprintf(stderr, "po-check: %s: openat2: %s%s\n", argv[1], g_strerror(-probe),
                        probe == -ENOSYS ? " (Linux 5.6 or later is needed)" : "");
                return 2;
        }
        char root_path[PO_CHECK_FD_PATH_MAX];
        po_check_fd_path(root_fd, root_path);
        g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func((GDestroyNotify)po_check_problem_free);
        g_autoptr(GPtrArray) lock_files = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GHashTable) open_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GHashTable) not_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        PoCheck check = {
                .root_fd = root_fd,
                .profile = profile,
                .problems = problems,
                .lock_files = lock_files,
                .open_files = open_files,
                .not_files = not_files,
                .progress = isatty(STDERR_FILENO),
                .now = time(NULL),
                .mailbagfs = status_attr_is_protected(root_path),
        };
        g_autofree char *mount = check.mailbagfs ? NULL : status_attr_enclosing_mount(root_path);
        if (mount)
                fprintf(stderr, "po-check: warning: %s is inside the mailbagfs mount %s but is not "
                        "a postoffice it protects: lock holders are not known\n", argv[1], mount);
        po_check_layout(&check);
        po_check_walk(&check, "", 0);
        if (check.progress)
                fprintf(stderr, "\r\033[K");
        po_check_mailbags(&check);
        po_check_glb(&check);
        po_check_nme(&check);
        po_check_locks(&check);
        if (fix)
                po_check_fix(&check, json);
        po_check_print(problems, json);
        for (guint i = 0; i < problems->len; i++)
                if (((PoCheckProblem *)problems->pdata[i])->action == NULL)
                        return 1;
        return 0;
}
