/* profile.c - loads and validates a profile (a glib key file).
 *
 * GKeyFile accepts anything shaped like a key file and reports no line
 * numbers for meaning, so loading is two passes: a line scan that refuses
 * unknown groups, unknown or repeated keys and malformed lines with their
 * line number (a typo must never silently weaken locking), then GKeyFile
 * for the values, whose errors are placed on a line by searching the text.
 */
#include "profile-private.h"
#include "profile-default.h"
#include "naming.h"
#include "po-file.h"

#include <string.h>

/* clang-format would split the quark name at its dashes. */
// clang-format off
G_DEFINE_QUARK(po-profile-error-quark, po_profile_error)
// clang-format on

typedef struct {
        const char *group;
        const char *keys[5];
} ProfileGroupSchema;

/* Every key is required; see profiles/msmail3.profile for their meaning. */
static const ProfileGroupSchema profile_schema[] = {
        { "profile", { "name" } },
        { "layout", { "folders", "message-subfolders", "attachment-subfolders", "marker" } },
        { "queues", { "names" } },
        { "locks", { "folder", "session-extensions", "v20-extensions" } },
        { "exclusive", { "files" } },
};

/* Folders whose files the formats know by fixed names (D, Q77926). */
static const char *const profile_required_folders[] = {
        PO_FOLDER_ATTACHMENT, PO_FOLDER_GLOBAL, PO_FOLDER_KEY,
        PO_FOLDER_MESSAGE, PO_FOLDER_MBG, PO_FOLDER_ENVELOPE,
};

static const ProfileGroupSchema *profile_schema_group(const char *group, gsize len)
{
        for (gsize i = 0; i < G_N_ELEMENTS(profile_schema); i++)
                if (strlen(profile_schema[i].group) == len &&
                    memcmp(profile_schema[i].group, group, len) == 0)
                        return &profile_schema[i];
        return NULL;
}

static bool profile_schema_has_key(const ProfileGroupSchema *schema,
                                   const char *key, gsize len)
{
        for (gsize i = 0; i < G_N_ELEMENTS(schema->keys) && schema->keys[i]; i++)
                if (strlen(schema->keys[i]) == len &&
                    memcmp(schema->keys[i], key, len) == 0)
                        return true;
        return false;
}

static void profile_trim(const char **start, const char **end)
{
        while (*start < *end && g_ascii_isspace(**start))
                (*start)++;
        while (*end > *start && g_ascii_isspace((*end)[-1]))
                (*end)--;
}

/* The line of "key=" inside "[group]", or of "[group]" when @key is NULL;
 * 0 when absent. Only called on text the line scan has accepted. */
static unsigned profile_find_line(const char *data, gsize len,
                                  const char *group, const char *key)
{
        const char *p = data, *limit = data + len;
        bool in_group = false;
        for (unsigned line = 1; p < limit; line++) {
                const char *eol = memchr(p, '\n', limit - p);
                const char *next = eol ? eol + 1 : limit;
                const char *s = p, *e = eol ? eol : limit;
                profile_trim(&s, &e);
                if (s < e && *s == '[') {
                        in_group = e - s - 2 == (gssize)strlen(group) &&
                                   memcmp(s + 1, group, e - s - 2) == 0;
                        if (in_group && key == NULL)
                                return line;
                } else if (in_group && key && s < e && *s != '#') {
                        const char *eq = memchr(s, '=', e - s);
                        const char *ke = eq ? eq : e;
                        profile_trim(&s, &ke);
                        if (ke - s == (gssize)strlen(key) && memcmp(s, key, ke - s) == 0)
                                return line;
                }
                p = next;
        }
        return 0;
}

static void profile_set_line_error(GError **error, int code, const char *origin,
                                   unsigned line, const char *format, ...) G_GNUC_PRINTF(5, 6);

static void profile_set_line_error(GError **error, int code, const char *origin,
                                   unsigned line, const char *format, ...)
{
        va_list args;
        va_start(args, format);
        g_autofree char *reason = g_strdup_vprintf(format, args);
        va_end(args);
        if (line > 0)
                g_set_error(error, PO_PROFILE_ERROR, code, "%s:%u: %s", origin, line, reason);
        else
                g_set_error(error, PO_PROFILE_ERROR, code, "%s: %s", origin, reason);
}

/* Pass one: syntax and schema, line by line. */
static bool profile_scan(const char *data, gsize len, const char *origin, GError **error)
{
        const ProfileGroupSchema *schema = NULL;
        g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        const char *p = data, *limit = data + len;
        if (memchr(data, '\0', len) != NULL) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, 0,
                                       "a NUL byte in a text file");
                return false;
        }
        for (unsigned line = 1; p < limit; line++) {
                const char *eol = memchr(p, '\n', limit - p);
                const char *s = p, *e = eol ? eol : limit;
                p = eol ? eol + 1 : limit;
                profile_trim(&s, &e);
                if (s == e || *s == '#')
                        continue;
                if (*s == '[') {
                        if (e[-1] != ']' || e - s < 3) {
                                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                                       "expected a group name in [brackets]");
                                return false;
                        }
                        schema = profile_schema_group(s + 1, e - s - 2);
                        g_autofree char *group = g_strndup(s + 1, e - s - 2);
                        if (schema == NULL) {
                                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                                       "unknown group [%s]", group);
                                return false;
                        }
                        g_autofree char *id = g_strconcat("[", group, "]", NULL);
                        if (!g_hash_table_add(seen, g_steal_pointer(&id))) {
                                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                                       "group [%s] appears twice", group);
                                return false;
                        }
                        continue;
                }
                const char *eq = memchr(s, '=', e - s);
                if (eq == NULL) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                               "expected key=value, [group] or # comment");
                        return false;
                }
                const char *ks = s, *ke = eq;
                profile_trim(&ks, &ke);
                g_autofree char *key = g_strndup(ks, ke - ks);
                if (schema == NULL) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                               "key '%s' before any group", key);
                        return false;
                }
                if (!profile_schema_has_key(schema, ks, ke - ks)) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                               "unknown key '%s' in group [%s]", key, schema->group);
                        return false;
                }
                g_autofree char *id = g_strconcat(schema->group, "/", key, NULL);
                if (!g_hash_table_add(seen, g_steal_pointer(&id))) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, line,
                                               "key '%s' appears twice in group [%s]", key, schema->group);
                        return false;
                }
        }
        return true;
}

typedef struct {
        GKeyFile *keyfile;
        const char *data;
        gsize len;
        const char *origin;
} ProfileReader;

static unsigned profile_line(const ProfileReader *reader, const char *group, const char *key)
{
        return profile_find_line(reader->data, reader->len, group, key);
}

static bool profile_require(const ProfileReader *reader, const char *group,
                            const char *key, GError **error)
{
        if (!g_key_file_has_group(reader->keyfile, group)) {
                profile_set_line_error(error, PO_PROFILE_ERROR_MISSING, reader->origin, 0,
                                       "missing group [%s]", group);
                return false;
        }
        if (!g_key_file_has_key(reader->keyfile, group, key, NULL)) {
                profile_set_line_error(error, PO_PROFILE_ERROR_MISSING, reader->origin,
                                       profile_line(reader, group, NULL),
                                       "missing key '%s' in group [%s]", key, group);
                return false;
        }
        return true;
}

static void profile_strup_in_place(char *s)
{
        for (; *s; s++)
                *s = g_ascii_toupper(*s);
}

static char *profile_get_string(const ProfileReader *reader, const char *group,
                                const char *key, GError **error)
{
        if (!profile_require(reader, group, key, error))
                return NULL;
        g_autoptr(GError) local = NULL;
        g_autofree char *value = g_key_file_get_string(reader->keyfile, group, key, &local);
        if (value == NULL) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                       profile_line(reader, group, key), "%s", local->message);
                return NULL;
        }
        g_strstrip(value);
        return g_steal_pointer(&value);
}

/* A list, upper-cased, each item checked by @valid; @min_items 0 or 1. */
static char **profile_get_names(const ProfileReader *reader, const char *group,
                                const char *key, bool (*valid)(const char *),
                                const char *expected, gsize min_items, GError **error)
{
        if (!profile_require(reader, group, key, error))
                return NULL;
        g_autoptr(GError) local = NULL;
        gsize n = 0;
        g_auto(GStrv) list = g_key_file_get_string_list(reader->keyfile, group, key, &n, &local);
        unsigned line = profile_line(reader, group, key);
        if (list == NULL && local != NULL &&
            !g_error_matches(local, G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_INVALID_VALUE)) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin, line,
                                       "%s", local->message);
                return NULL;
        }
        if (list == NULL)
                list = g_new0(char *, 1);
        for (gsize i = 0; list[i]; i++) {
                g_strstrip(list[i]);
                profile_strup_in_place(list[i]);
                if (!valid(list[i])) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin, line,
                                               "'%s' in %s is not %s", list[i], key, expected);
                        return NULL;
                }
                for (gsize j = 0; j < i; j++) {
                        if (strcmp(list[i], list[j]) == 0) {
                                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin, line,
                                                       "'%s' is listed twice in %s", list[i], key);
                                return NULL;
                        }
                }
        }
        if (g_strv_length(list) < min_items) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin, line,
                                       "%s needs at least one entry", key);
                return NULL;
        }
        return g_steal_pointer(&list);
}

static bool profile_valid_base(const char *s)
{
        return po_naming_is_valid_base(s, strlen(s));
}

static bool profile_valid_extension(const char *s)
{
        return po_naming_is_valid_extension(s, strlen(s));
}

static bool profile_valid_v20_pattern(const char *s)
{
        return po_naming_is_valid_extension(s, strlen(s)) && strchr(s, 'N') != NULL;
}

static bool profile_valid_exclusive(const char *s)
{
        const char *slash = strchr(s, '/');
        return slash != NULL && strlen(s) < PO_NAME_MAX &&
               po_naming_is_valid_base(s, slash - s) && po_naming_is_valid_83(slash + 1);
}

static bool profile_strv_contains(char **list, const char *name, gsize len)
{
        for (gsize i = 0; list[i]; i++)
                if (strlen(list[i]) == len && memcmp(list[i], name, len) == 0)
                        return true;
        return false;
}

static bool profile_get_prefix(const ProfileReader *reader, const char *key,
                               char out[PO_PROFILE_PREFIX_MAX], GError **error)
{
        g_autofree char *prefix = profile_get_string(reader, "layout", key, error);
        if (prefix == NULL)
                return false;
        profile_strup_in_place(prefix);
        gsize len = strlen(prefix);
        if (len >= PO_PROFILE_PREFIX_MAX || !po_naming_is_valid_base(prefix, len)) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                       profile_line(reader, "layout", key),
                                       "%s must be 1-7 DOS file name characters", key);
                return false;
        }
        memcpy(out, prefix, len + 1);
        return true;
}

/* Pass two: values. Cross-checks keep the profile consistent with the fixed
 * format rules (lock folder and exclusive files inside declared folders). */
static bool profile_read(PoProfile *profile, const ProfileReader *reader, GError **error)
{
        profile->name = profile_get_string(reader, "profile", "name", error);
        if (profile->name == NULL)
                return false;
        if (profile->name[0] == '\0') {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                       profile_line(reader, "profile", "name"), "name is empty");
                return false;
        }
        profile->folders = profile_get_names(reader, "layout", "folders", profile_valid_base,
                                             "an 8.3 folder name", 1, error);
        if (profile->folders == NULL)
                return false;
        for (gsize i = 0; i < G_N_ELEMENTS(profile_required_folders); i++) {
                const char *need = profile_required_folders[i];
                if (!profile_strv_contains(profile->folders, need, strlen(need))) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                               profile_line(reader, "layout", "folders"),
                                               "folders must include %s", need);
                        return false;
                }
        }
        if (!profile_get_prefix(reader, "message-subfolders", profile->message_prefix, error) ||
            !profile_get_prefix(reader, "attachment-subfolders", profile->attachment_prefix, error))
                return false;
        profile->marker = profile_get_string(reader, "layout", "marker", error);
        if (profile->marker == NULL)
                return false;
        profile_strup_in_place(profile->marker);
        if (!po_naming_is_valid_83(profile->marker)) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                       profile_line(reader, "layout", "marker"),
                                       "marker '%s' is not an 8.3 file name", profile->marker);
                return false;
        }
        profile->queues = profile_get_names(reader, "queues", "names", profile_valid_base,
                                            "a mailbag name (1-8 DOS characters)", 1, error);
        if (profile->queues == NULL)
                return false;
        profile->lock_folder = profile_get_string(reader, "locks", "folder", error);
        if (profile->lock_folder == NULL)
                return false;
        profile_strup_in_place(profile->lock_folder);
        if (!profile_strv_contains(profile->folders, profile->lock_folder,
                                   strlen(profile->lock_folder))) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                       profile_line(reader, "locks", "folder"),
                                       "lock folder '%s' is not in [layout] folders",
                                       profile->lock_folder);
                return false;
        }
        profile->session_extensions = profile_get_names(reader, "locks", "session-extensions",
                                                        profile_valid_extension,
                                                        "a 1-3 character extension", 1, error);
        if (profile->session_extensions == NULL)
                return false;
        /* An empty list is allowed: a site without Mail 2.x programs. */
        profile->v20_extensions = profile_get_names(reader, "locks", "v20-extensions",
                                                    profile_valid_v20_pattern,
                                                    "a 1-3 character pattern with at least one N",
                                                    0, error);
        if (profile->v20_extensions == NULL)
                return false;
        /* P1/<n>.P1 is the routing envelope (D, Q100826): never a lock. */
        if (profile_strv_contains(profile->session_extensions, PO_FOLDER_ENVELOPE,
                                  strlen(PO_FOLDER_ENVELOPE))) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                       profile_line(reader, "locks", "session-extensions"),
                                       "P1 is the envelope extension, not a lock");
                return false;
        }
        profile->exclusive_files = profile_get_names(reader, "exclusive", "files",
                                                     profile_valid_exclusive,
                                                     "FOLDER/NAME.EXT in 8.3 names", 0, error);
        if (profile->exclusive_files == NULL)
                return false;
        for (gsize i = 0; profile->exclusive_files[i]; i++) {
                const char *file = profile->exclusive_files[i];
                if (!profile_strv_contains(profile->folders, file, strchr(file, '/') - file)) {
                        profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, reader->origin,
                                               profile_line(reader, "exclusive", "files"),
                                               "'%s' is not in a folder of [layout] folders", file);
                        return false;
                }
        }
        return true;
}

PoProfile *po_profile_load_data(const char *data, gsize len, const char *origin,
                                GError **error)
{
        g_return_val_if_fail(data != NULL || len == 0, NULL);
        if (origin == NULL)
                origin = "(profile)";
        if (!profile_scan(data, len, origin, error))
                return NULL;
        g_autoptr(GKeyFile) keyfile = g_key_file_new();
        g_autoptr(GError) local = NULL;
        if (!g_key_file_load_from_data(keyfile, data, len, G_KEY_FILE_NONE, &local)) {
                profile_set_line_error(error, PO_PROFILE_ERROR_PARSE, origin, 0, "%s", local->message);
                return NULL;
        }
        ProfileReader reader = { keyfile, data, len, origin };
        g_autoptr(PoProfile) profile = g_new0(PoProfile, 1);
        if (!profile_read(profile, &reader, error))
                return NULL;
        return g_steal_pointer(&profile);
}

PoProfile *po_profile_load(const char *path, GError **error)
{
        g_autofree guint8 *data = NULL;
        gsize len = 0;
        g_autoptr(GError) local = NULL;
        /* Bounded, and a regular file: -o profile=/dev/zero or a FIFO must
         * not hold or grow the daemon. */
        if (!po_file_read(path, PO_PROFILE_MAX_BYTES, &data, &len, &local)) {
                g_set_error(error, PO_PROFILE_ERROR, PO_PROFILE_ERROR_PARSE, "%s", local->message);
                return NULL;
        }
        return po_profile_load_data((const char *)data, len, path, error);
}

PoProfile *po_profile_new_default(void)
{
        /* The embedded text is tested at build time (test-profile), so a
         * failure here is a packaging bug, not a run-time condition. */
        g_autoptr(GError) error = NULL;
        PoProfile *profile = po_profile_load_data(po_profile_default_text,
                                                  po_profile_default_len,
                                                  "msmail3.profile (built in)", &error);
        if (profile == NULL)
                g_error("built-in profile is broken: %s", error->message);
        return profile;
}

void po_profile_free(PoProfile *profile)
{
        if (profile == NULL)
                return;
        g_free(profile->name);
        g_strfreev(profile->folders);
        g_free(profile->marker);
        g_strfreev(profile->queues);
        g_free(profile->lock_folder);
        g_strfreev(profile->session_extensions);
        g_strfreev(profile->v20_extensions);
        g_strfreev(profile->exclusive_files);
        g_free(profile);
}

const char *po_profile_name(const PoProfile *profile)
{
        return profile->name;
}

const char *const *po_profile_folders(const PoProfile *profile)
{
        return (const char *const *)profile->folders;
}

const char *po_profile_message_subfolder_prefix(const PoProfile *profile)
{
        return profile->message_prefix;
}

const char *po_profile_attachment_subfolder_prefix(const PoProfile *profile)
{
        return profile->attachment_prefix;
}

const char *po_profile_marker(const PoProfile *profile)
{
        return profile->marker;
}

const char *const *po_profile_queues(const PoProfile *profile)
{
        return (const char *const *)profile->queues;
}

bool po_profile_is_queue(const PoProfile *profile, const char *name)
{
        for (gsize i = 0; profile->queues[i]; i++)
                if (g_ascii_strcasecmp(profile->queues[i], name) == 0)
                        return true;
        return false;
}

const char *po_profile_lock_folder(const PoProfile *profile)
{
        return profile->lock_folder;
}

const char *const *po_profile_session_extensions(const PoProfile *profile)
{
        return (const char *const *)profile->session_extensions;
}

const char *const *po_profile_v20_extensions(const PoProfile *profile)
{
        return (const char *const *)profile->v20_extensions;
}

const char *const *po_profile_exclusive_files(const PoProfile *profile)
{
        return (const char *const *)profile->exclusive_files;
}
