/* classify.c - which postoffice path is what (po_classify).
 *
 * Called by the daemon on every open, create, unlink and rename: it works
 * on fixed stack buffers, allocates nothing, reads the immutable profile
 * only, and does a handful of string compares. Anything it does not
 * recognise, or cannot parse as 8.3 names (empty, "..", overlong, non-ASCII,
 * a trailing slash), is PO_ROLE_OTHER.
 *
 * Fixed names (D, Q77926): mailbags are KEY/<name>.KEY and MBG/<name>.MBG;
 * envelopes P1/<8 hex>.P1 (Q100826); bodies MAI/<prefix><d>/<8 hex>.MAI and
 * attachments ATT/<prefix><d>/<8 hex>.ATT, <d> the last hex digit of the
 * number (Q87409). A message file in the wrong subfolder is OTHER: no mail
 * program would look for it there, so it takes part in no protocol (po-check
 * reports it as misplaced).
 */
#include "profile-private.h"
#include "naming.h"

#include <string.h>

/* An 8.3 component, upper case: "0009DF5E.MAI" is 12 characters. */
#define CLASSIFY_COMPONENT_MAX 13
#define CLASSIFY_DEPTH_MAX 3

typedef struct {
        char text[CLASSIFY_COMPONENT_MAX]; /* whole component, upper case */
        char base[9];
        char ext[4]; /* "" when there is no dot */
} ClassifyComponent;

/* Copies @len bytes of @src as an upper-case 8.3 name; false if not one. */
static bool classify_component(const char *src, gsize len, ClassifyComponent *out)
{
        if (len == 0 || len >= CLASSIFY_COMPONENT_MAX)
                return false;
        for (gsize i = 0; i < len; i++)
                out->text[i] = g_ascii_toupper(src[i]);
        out->text[len] = '\0';
        const char *dot = memchr(out->text, '.', len);
        gsize base_len = dot ? (gsize)(dot - out->text) : len;
        gsize ext_len = dot ? len - base_len - 1 : 0;
        if (!po_naming_is_valid_base(out->text, base_len))
                return false;
        if (dot && !po_naming_is_valid_extension(dot + 1, ext_len))
                return false;
        memcpy(out->base, out->text, base_len);
        out->base[base_len] = '\0';
        memcpy(out->ext, dot ? dot + 1 : "", ext_len);
        out->ext[ext_len] = '\0';
        return true;
}

/* Splits @relpath into at most CLASSIFY_DEPTH_MAX components; -1 if the
 * path cannot be a postoffice file. */
static int classify_split(const char *relpath, ClassifyComponent parts[CLASSIFY_DEPTH_MAX])
{
        int n = 0;
        const char *p = relpath;
        for (;;) {
                const char *slash = strchr(p, '/');
                gsize len = slash ? (gsize)(slash - p) : strlen(p);
                if (n == CLASSIFY_DEPTH_MAX || !classify_component(p, len, &parts[n]))
                        return -1;
                n++;
                if (slash == NULL)
                        return n;
                p = slash + 1;
        }
}

static bool classify_strv_has(char *const *list, const char *name)
{
        for (gsize i = 0; list[i]; i++)
                if (strcmp(list[i], name) == 0)
                        return true;
        return false;
}

bool po_profile_v20_match(const char *pattern, const char *ext, unsigned *process_number)
{
        unsigned number = 0;
        gsize i = 0;
        for (; pattern[i] && ext[i]; i++) {
                if (pattern[i] == 'N') {
                        if (!g_ascii_isdigit(ext[i]))
                                return false;
                        number = number * 10 + (unsigned)(ext[i] - '0');
                } else if (pattern[i] != ext[i]) {
                        return false;
                }
        }
        if (pattern[i] != ext[i])
                return false;
        *process_number = number;
        return true;
}

static void classify_mailbag(const PoProfile *profile, PoRole role,
                             const ClassifyComponent *file, PoClass *out)
{
        out->role = role;
        g_strlcpy(out->name, file->base, sizeof out->name);
        out->is_queue = classify_strv_has(profile->queues, file->base);
}

/* The entry of @list ("GLB/CONTROL.GLB") that names @file in folder @dir,
 * compared in place: every request classifies its path, so no joined
 * copy is made. NULL when none does. */
static const char *classify_exclusive_entry(char *const *list, const ClassifyComponent *dir,
                                            const ClassifyComponent *file)
{
        gsize dir_len = strlen(dir->text);
        for (gsize i = 0; list[i]; i++)
                if (strncmp(list[i], dir->text, dir_len) == 0 && list[i][dir_len] == '/' &&
                    strcmp(list[i] + dir_len + 1, file->text) == 0)
                        return list[i];
        return NULL;
}

static void classify_in_folder(const PoProfile *profile, const ClassifyComponent *dir,
                               const ClassifyComponent *file, PoClass *out)
{
        if (dir->ext[0] != '\0')
                return;
        const char *exclusive = classify_exclusive_entry(profile->exclusive_files, dir, file);
        if (exclusive) {
                out->role = PO_ROLE_EXCLUSIVE;
                g_strlcpy(out->name, exclusive, sizeof out->name);
                return;
        }
        if (strcmp(dir->text, PO_FOLDER_KEY) == 0 && strcmp(file->ext, PO_FOLDER_KEY) == 0) {
                classify_mailbag(profile, PO_ROLE_MAILBAG_KEY, file, out);
                return;
        }
        if (strcmp(dir->text, PO_FOLDER_MBG) == 0 && strcmp(file->ext, PO_FOLDER_MBG) == 0) {
                classify_mailbag(profile, PO_ROLE_MAILBAG_MBG, file, out);
                return;
        }
        if (strcmp(dir->text, PO_FOLDER_ENVELOPE) == 0 && strcmp(file->ext, PO_FOLDER_ENVELOPE) == 0) {
                uint32_t number;
                if (po_naming_parse_number(file->base, strlen(file->base), &number)) {
                        out->role = PO_ROLE_ENVELOPE;
                        out->message_number = number;
                }
                return;
        }
        if (strcmp(dir->text, profile->lock_folder) != 0 || file->ext[0] == '\0')
                return;
        if (classify_strv_has(profile->session_extensions, file->ext)) {
                classify_mailbag(profile, PO_ROLE_SESSION_LOCK, file, out);
                out->lock_protocol = PO_LOCK_PROTOCOL_SESSION_FILE;
                return;
        }
        for (gsize i = 0; profile->v20_extensions[i]; i++) {
                unsigned process;
                if (po_profile_v20_match(profile->v20_extensions[i], file->ext, &process)) {
                        classify_mailbag(profile, PO_ROLE_SESSION_LOCK, file, out);
                        out->lock_protocol = PO_LOCK_PROTOCOL_V20_FILE;
                        out->process_number = process;
                        return;
                }
        }
}

/* MAI/<prefix><d>/<n>.MAI or ATT/<prefix><d>/<n>.ATT with <d> matching n. */
static void classify_hashed(const PoProfile *profile, const ClassifyComponent parts[3],
                            PoClass *out)
{
        const char *folder = parts[0].text;
        const char *prefix;
        PoRole role;
        if (strcmp(folder, PO_FOLDER_MESSAGE) == 0) {
                prefix = profile->message_prefix;
                role = PO_ROLE_MESSAGE;
        } else if (strcmp(folder, PO_FOLDER_ATTACHMENT) == 0) {
                prefix = profile->attachment_prefix;
                role = PO_ROLE_ATTACHMENT;
        } else {
                return;
        }
        gsize prefix_len = strlen(prefix);
        const char *sub = parts[1].text;
        if (parts[1].ext[0] != '\0' || strlen(sub) != prefix_len + 1 ||
            memcmp(sub, prefix, prefix_len) != 0)
                return;
        uint32_t number;
        const ClassifyComponent *file = &parts[2];
        if (strcmp(file->ext, folder) != 0 ||
            !po_naming_parse_number(file->base, strlen(file->base), &number))
                return;
        if (sub[prefix_len] != po_naming_subfolder_digit(number))
                return;
        out->role = role;
        out->message_number = number;
}

void po_classify(const PoProfile *profile, const char *relpath, PoClass *out)
{
        memset(out, 0, sizeof *out);
        if (profile == NULL || relpath == NULL)
                return;
        ClassifyComponent parts[CLASSIFY_DEPTH_MAX];
        int n = classify_split(relpath, parts);
        if (n == 2)
                classify_in_folder(profile, &parts[0], &parts[1], out);
        else if (n == 3)
                classify_hashed(profile, parts, out);
}

const char *po_role_to_string(PoRole role)
{
        switch (role) {
        case PO_ROLE_OTHER: return "other";
        case PO_ROLE_MAILBAG_KEY: return "mailbag-key";
        case PO_ROLE_MAILBAG_MBG: return "mailbag-mbg";
        case PO_ROLE_SESSION_LOCK: return "session-lock";
        case PO_ROLE_EXCLUSIVE: return "exclusive";
        case PO_ROLE_MESSAGE: return "message";
        case PO_ROLE_ENVELOPE: return "envelope";
        case PO_ROLE_ATTACHMENT: return "attachment";
        }
        return "unknown";
}

const char *po_lock_protocol_to_string(PoLockProtocol protocol)
{
        switch (protocol) {
        case PO_LOCK_PROTOCOL_NONE: return "none";
        case PO_LOCK_PROTOCOL_SESSION_FILE: return "session-file";
        case PO_LOCK_PROTOCOL_V20_FILE: return "v20-file";
        }
        return "unknown";
}
