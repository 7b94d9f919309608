/* mkpo - creates a complete, deterministic sample postoffice.
 *
 * Layout per the profile (D, Q77926, Q135868): every folder and the 16
 * message and attachment subfolders, each with a read-only 1-byte marker;
 * the standard mailbags 00000000, INQUEUE, INQUEUE3 and SYSTEM plus any
 * site queue of the profile; the GLB files at their documented sizes;
 * ACCESS*.GLB with the administrator and N users; one mailbag per user,
 * named by its hex mailbag number; M messages, each an opaque .MAI body.
 *
 * Messages 1..min(M, --queue-max) are queued: a P1 envelope and a record in
 * INQUEUE3. The rest are delivered round-robin to the users' mailbags
 * (record + .MAI, no P1: the consumer deletes the P1 last, D, Q136379),
 * because a queue holds at most 4096 records (D, Q119088).
 *
 * Everything derives from --seed through splitmix64, so two runs give the
 * same bytes (file times aside). .MAI and P1 contents are opaque
 * pseudo-random bytes: the real formats are enciphered and unpublished
 * (D, Q130322), so no attempt is made to imitate them. The record checksum
 * near 0x6C is left zero: its algorithm is unknown (inferred, Q108027).
 */
#include "glb.h"
#include "mailbag.h"
#include "naming.h"
#include "po-file.h"
#include "profile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Keep every generated mailbag well below po-check's near-full warning
 * (90% of 4096 records). */
#define MKPO_MAILBAG_BUDGET 3000
#define MKPO_ADMIN_ALIAS "ADMIN"
#define MKPO_MAX_USERS 99999

typedef struct {
        uint64_t state;
} MkpoRandom;

/* splitmix64: tiny, fast, and the same on every platform. */
static uint64_t mkpo_random_next(MkpoRandom *random)
{
        uint64_t z = (random->state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
}

static unsigned mkpo_random_below(MkpoRandom *random, unsigned bound)
{
        return (unsigned)(mkpo_random_next(random) % bound);
}

static void mkpo_random_fill(MkpoRandom *random, uint8_t *buf, gsize len)
{
        for (gsize i = 0; i < len; i += 8) {
                uint64_t v = mkpo_random_next(random);
                memcpy(buf + i, &v, MIN((gsize)8, len - i));
        }
}

typedef struct {
        const char *root;
        const PoProfile *profile;
        unsigned users;
        unsigned messages;
        unsigned queue_max;
        bool force;
        MkpoRandom random;
} Mkpo;

static bool mkpo_mkdir(const char *path, GError **error)
{
        if (mkdir(path, 0755) == 0 || errno == EEXIST)
                return true;
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "%s: mkdir: %s", path, g_strerror(errno));
        return false;
}

static bool mkpo_write(const Mkpo *mkpo, const char *relpath, const void *data, gsize len,
                       GError **error)
{
        g_autofree char *path = g_build_filename(mkpo->root, relpath, NULL);
        return po_file_write(path, data, len, error);
}

/* The marker is read-only (D, Q135868); with --force an old one is
 * replaced rather than opened for writing. */
static bool mkpo_marker(const Mkpo *mkpo, const char *folder, GError **error)
{
        g_autofree char *path = g_build_filename(mkpo->root, folder,
                                                 po_profile_marker(mkpo->profile), NULL);
        static const uint8_t marker_byte = 0; /* content unknown (inferred) */
        if (unlink(path) < 0 && errno != ENOENT) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "%s: unlink: %s", path, g_strerror(errno));
                return false;
        }
        if (!po_file_write(path, &marker_byte, 1, error))
                return false;
        if (chmod(path, 0444) < 0) {
                g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                            "%s: chmod: %s", path, g_strerror(errno));
                return false;
        }
        return true;
}

static bool mkpo_folder(const Mkpo *mkpo, const char *relpath, GError **error)
{
        g_autofree char *path = g_build_filename(mkpo->root, relpath, NULL);
        return mkpo_mkdir(path, error) && mkpo_marker(mkpo, relpath, error);
}

static bool mkpo_layout(const Mkpo *mkpo, GError **error)
{
        const char *const *folders = po_profile_folders(mkpo->profile);
        for (gsize i = 0; folders[i]; i++)
                if (!mkpo_folder(mkpo, folders[i], error))
                        return false;
        for (uint32_t digit = 0; digit < 16; digit++) {
                g_autofree char *messages = po_profile_message_folder(mkpo->profile, digit);
                g_autofree char *attachments = po_profile_attachment_folder(mkpo->profile, digit);
                if (!mkpo_folder(mkpo, messages, error) || !mkpo_folder(mkpo, attachments, error))
                        return false;
        }
        return true;
}

static void mkpo_user_alias(unsigned user, char *out, gsize size)
{
        if (user == 0)
                g_strlcpy(out, MKPO_ADMIN_ALIAS, size);
        else
                g_snprintf(out, size, "USER%05u", user);
}

static bool mkpo_glb(const Mkpo *mkpo, GError **error)
{
        static const char *const zero_filled[] = {
                "FLAG.GLB", "GLOBAL.GLB", "MASTER.GLB", "TID.GLB",
                "NETPO.GLB", "GROUP.GLB", "NETWORK.GLB",
        };
        uint8_t zeros[512] = { 0 };
        for (gsize i = 0; i < G_N_ELEMENTS(zero_filled); i++) {
                gssize size = po_glb_fresh_size(zero_filled[i]);
                g_autofree char *rel = g_strconcat("GLB/", zero_filled[i], NULL);
                if (!mkpo_write(mkpo, rel, zeros, (gsize)size, error))
                        return false;
        }
        /* Mailbag 0 is the administrator's, users are 1..N; message numbers
         * start at 1. */
        PoControl control = { .next_mailbag = mkpo->users + 1,
                              .next_message = mkpo->messages + 1 };
        uint8_t control_bytes[PO_GLB_CONTROL_SIZE];
        po_glb_control_write(control_bytes, &control);
        if (!mkpo_write(mkpo, "GLB/CONTROL.GLB", control_bytes, sizeof control_bytes, error))
                return false;

        gsize n = mkpo->users + 1;
        g_autofree uint8_t *access = g_malloc0(n * PO_GLB_ACCESS_RECORD_SIZE);
        for (unsigned user = 0; user < n; user++) {
                char alias[16];
                mkpo_user_alias(user, alias, sizeof alias);
                po_glb_access_record_init(access + (gsize)user * PO_GLB_ACCESS_RECORD_SIZE, alias);
        }
        /* ACCESS2 and ACCESS3 contents are unknown: zero records, so that
         * only the counts (which Listuser checks) are meaningful. */
        g_autofree uint8_t *zero_records = g_malloc0(n * PO_GLB_ACCESS3_RECORD_SIZE);
        return mkpo_write(mkpo, "GLB/ACCESS.GLB", access, n * PO_GLB_ACCESS_RECORD_SIZE, error) &&
               mkpo_write(mkpo, "GLB/ACCESS2.GLB", zero_records, n * PO_GLB_ACCESS2_RECORD_SIZE, error) &&
               mkpo_write(mkpo, "GLB/ACCESS3.GLB", zero_records, n * PO_GLB_ACCESS3_RECORD_SIZE, error);
}

static void mkpo_record(Mkpo *mkpo, uint32_t number, uint8_t record[PO_MAILBAG_RECORD_SIZE])
{
        PoRecord fields = { 0 };
        mkpo_user_alias(mkpo_random_below(&mkpo->random, mkpo->users + 1),
                        fields.sender, sizeof fields.sender);
        g_snprintf(fields.subject, sizeof fields.subject, "Sample message %u", number);
        fields.minute = mkpo_random_below(&mkpo->random, 60);
        fields.hour = mkpo_random_below(&mkpo->random, 24);
        fields.day = 1 + mkpo_random_below(&mkpo->random, 28);
        fields.month = 1 + mkpo_random_below(&mkpo->random, 12);
        fields.year = 1994 + mkpo_random_below(&mkpo->random, 6);
        fields.has_message_number = true;
        fields.message_number = number;
        memset(record, 0, PO_MAILBAG_RECORD_SIZE);
        po_record_encode(record, &fields);
}

static bool mkpo_opaque_file(Mkpo *mkpo, const char *relpath, gsize min, gsize spread,
                             GError **error)
{
        uint8_t buf[4096];
        gsize len = min + mkpo_random_below(&mkpo->random, spread);
        mkpo_random_fill(&mkpo->random, buf, len);
        return mkpo_write(mkpo, relpath, buf, len, error);
}

static bool mkpo_save_empty(const Mkpo *mkpo, const char *name, GError **error)
{
        g_autoptr(PoMailbag) empty = po_mailbag_new();
        return po_mailbag_save(empty, mkpo->root, name, error);
}

static bool mkpo_mailbags_and_messages(Mkpo *mkpo, GError **error)
{
        static const char *const standard[] = { "00000000", "INQUEUE", "INQUEUE3", "SYSTEM" };
        for (gsize i = 0; i < G_N_ELEMENTS(standard); i++)
                if (!mkpo_save_empty(mkpo, standard[i], error))
                        return false;
        /* Site queues of a custom profile get their (empty) mailbags too. */
        const char *const *queues = po_profile_queues(mkpo->profile);
        for (gsize i = 0; queues[i]; i++)
                if (!mkpo_save_empty(mkpo, queues[i], error))
                        return false;

        g_autoptr(PoMailbag) inqueue = po_mailbag_new();
        g_autoptr(GPtrArray) users = g_ptr_array_new_with_free_func((GDestroyNotify)po_mailbag_free);
        for (unsigned user = 0; user < mkpo->users; user++)
                g_ptr_array_add(users, po_mailbag_new());

        for (uint32_t number = 1; number <= mkpo->messages; number++) {
                uint8_t record[PO_MAILBAG_RECORD_SIZE];
                g_autofree char *body = po_profile_message_path(mkpo->profile, number);
                if (!mkpo_opaque_file(mkpo, body, 128, 1024, error))
                        return false;
                mkpo_record(mkpo, number, record);
                PoMailbag *target;
                if (number <= mkpo->queue_max) {
                        g_autofree char *envelope = po_profile_envelope_path(mkpo->profile, number);
                        if (!mkpo_opaque_file(mkpo, envelope, 64, 192, error))
                                return false;
                        target = inqueue;
                } else {
                        target = users->pdata[(number - mkpo->queue_max - 1) % mkpo->users];
                }
                if (po_mailbag_append(target, record, error) < 0)
                        return false;
        }
        if (!po_mailbag_save(inqueue, mkpo->root, "INQUEUE3", error))
                return false;
        for (unsigned user = 0; user < mkpo->users; user++) {
                char name[PO_NAMING_MAILBAG_MAX];
                po_naming_mailbag_name(user + 1, name);
                if (!po_mailbag_save(users->pdata[user], mkpo->root, name, error))
                        return false;
        }
        return true;
}

/* Refuses a non-empty directory unless --force; creates a missing one. */
static bool mkpo_prepare_root(const Mkpo *mkpo, GError **error)
{
        g_autoptr(GDir) dir = g_dir_open(mkpo->root, 0, NULL);
        if (dir == NULL)
                return g_mkdir_with_parents(mkpo->root, 0755) == 0 ||
                       (g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                                    "%s: cannot create: %s", mkpo->root, g_strerror(errno)), false);
        if (g_dir_read_name(dir) != NULL && !mkpo->force) {
                g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_EXIST,
                            "%s: directory is not empty (use --force to write into it)", mkpo->root);
                return false;
        }
        return true;
}

static bool mkpo_check_budget(const Mkpo *mkpo, GError **error)
{
        unsigned queued = MIN(mkpo->messages, mkpo->queue_max);
        unsigned rest = mkpo->messages - queued;
        unsigned per_user = mkpo->users ? (rest + mkpo->users - 1) / mkpo->users : rest;
        if (mkpo->queue_max > MKPO_MAILBAG_BUDGET || per_user > MKPO_MAILBAG_BUDGET ||
            (rest > 0 && mkpo->users == 0)) {
                g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                            "%u messages do not fit: at most %d per mailbag (queue and each "
                            "user), the hard limit being %d records; add --users or lower --messages",
                            mkpo->messages, MKPO_MAILBAG_BUDGET, PO_MAILBAG_MAX_RECORDS);
                return false;
        }
        return true;
}

int main(int argc, char **argv)
{
        gint users = 10, messages = 20, queue_max = 2000;
        gint64 seed = 1;
        gboolean force = FALSE;
        g_autofree char *profile_path = NULL;
        GOptionEntry entries[] = {
                { "users", 'u', 0, G_OPTION_ARG_INT, &users, "Users besides the administrator (default 10)", "N" },
                { "messages", 'm', 0, G_OPTION_ARG_INT, &messages, "Messages to create (default 20)", "M" },
                { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Seed of the contents (default 1)", "S" },
                { "queue-max", 'q', 0, G_OPTION_ARG_INT, &queue_max,
                  "Messages queued in INQUEUE3, the rest go to users (default 2000)", "Q" },
                { "force", 'f', 0, G_OPTION_ARG_NONE, &force, "Write into a non-empty directory", NULL },
                { "profile", 'p', 0, G_OPTION_ARG_FILENAME, &profile_path, "Profile file (default: built in)", "PATH" },
                G_OPTION_ENTRY_NULL,
        };
        g_autoptr(GOptionContext) context = g_option_context_new("DIR - create a sample postoffice");
        g_option_context_add_main_entries(context, entries, NULL);
        g_autoptr(GError) error = NULL;
        if (!g_option_context_parse(context, &argc, &argv, &error) || argc != 2 ||
            users < 0 || users > MKPO_MAX_USERS || messages < 0 || queue_max < 0) {
                fprintf(stderr, "mkpo: %s\nusage: mkpo DIR [--users N] [--messages M] [--seed S] "
                        "[--queue-max Q] [--force] [--profile PATH]\n",
                        error ? error->message : "bad arguments");
                return 2;
        }
        g_autoptr(PoProfile) profile = profile_path ? po_profile_load(profile_path, &error)
                                                    : po_profile_new_default();
        if (profile == NULL) {
                fprintf(stderr, "mkpo: %s\n", error->message);
                return 2;
        }
        Mkpo mkpo = {
                .root = argv[1],
                .profile = profile,
                .users = users,
                .messages = messages,
                .queue_max = queue_max,
                .force = force,
                .random = { (uint64_t)seed },
        };
        if (!mkpo_check_budget(&mkpo, &error)) {
                fprintf(stderr, "mkpo: %s\n", error->message);
                return 2;
        }
        if (!mkpo_prepare_root(&mkpo, &error) || !mkpo_layout(&mkpo, &error) ||
            !mkpo_glb(&mkpo, &error) || !mkpo_mailbags_and_messages(&mkpo, &error)) {
                fprintf(stderr, "mkpo: %s\n", error->message);
                return 1;
        }
        unsigned queued = MIN(mkpo.messages, mkpo.queue_max);
        printf("mkpo: %s: %u users, %u messages (%u queued in INQUEUE3)\n",
               mkpo.root, mkpo.users, mkpo.messages, queued);
        return 0;
}
