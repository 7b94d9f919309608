/* profile.h - which postoffice path is what.
 *
 * A profile is data, not code: a glib key file that declares the folder
 * layout, which mailbags are queues, the lock-file spellings of each locking
 * protocol and the files only one process may have open. The default
 * profile (Microsoft Mail 3.x, formats/profiles/msmail3.profile) is compiled
 * in; a site may load its own with po_profile_load().
 *
 * po_classify() is called by the daemon on every open, create, unlink and
 * rename, so it allocates nothing and is safe to call from many threads on
 * one loaded profile (a loaded profile is immutable).
 *
 * Names match case-insensitively (a DOS program asks for INQUEUE3.KEY, a
 * Unix tool may ask for inqueue3.key: both are the same mailbag).
 */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>

G_BEGIN_DECLS

#define PO_PROFILE_ERROR (po_profile_error_quark())
GQuark po_profile_error_quark(void);

typedef enum {
        PO_PROFILE_ERROR_PARSE,   /* not a key file, or a bad value */
        PO_PROFILE_ERROR_MISSING, /* a required group or key is absent */
} PoProfileError;

typedef enum {
        PO_ROLE_OTHER = 0,
        PO_ROLE_MAILBAG_KEY,   /* KEY/<mailbag>.KEY */
        PO_ROLE_MAILBAG_MBG,   /* MBG/<mailbag>.MBG */
        PO_ROLE_SESSION_LOCK,  /* P1/<mailbag>.0LK, .OLK or .0NN */
        PO_ROLE_EXCLUSIVE,     /* GLB/CONTROL.GLB and friends */
        PO_ROLE_MESSAGE,       /* MAI/MA?/<n>.MAI */
        PO_ROLE_ENVELOPE,      /* P1/<n>.P1 */
        PO_ROLE_ATTACHMENT,    /* ATT/AT?/<n>.ATT */
} PoRole;

typedef enum {
        PO_LOCK_PROTOCOL_NONE = 0,
        PO_LOCK_PROTOCOL_SESSION_FILE, /* .0LK/.OLK held open DENY_ALL (Mail 3.x) */
        PO_LOCK_PROTOCOL_V20_FILE,     /* .0NN created and deleted (Mail 2.x, -V20) */
} PoLockProtocol;

/* The folders whose names the formats fix (D, Q77926); a profile must list
 * them all. A file in one of them has the folder's name as its extension
 * (KEY/INQUEUE3.KEY, P1/0000000E.P1, MAI/MAE/0000000E.MAI). Build paths with
 * the po_profile_*_path() functions below, never by hand. */
#define PO_FOLDER_KEY "KEY"
#define PO_FOLDER_MBG "MBG"
#define PO_FOLDER_ENVELOPE "P1"
#define PO_FOLDER_MESSAGE "MAI"
#define PO_FOLDER_ATTACHMENT "ATT"
#define PO_FOLDER_GLOBAL "GLB"

/* A mailbag name is 8.3 without the extension, so 8 chars; the exclusive
 * file name is "FOLDER/NAME.EXT", at most 3+1+12 chars. */
#define PO_NAME_MAX 24

typedef struct {
        PoRole role;
        /* For MAILBAG_KEY, MAILBAG_MBG and SESSION_LOCK: the mailbag's name in
         * upper case ("INQUEUE3"); for EXCLUSIVE: the canonical upper-case
         * relative path ("GLB/CONTROL.GLB"). Empty otherwise. */
        char name[PO_NAME_MAX];
        /* The mailbag is declared a queue by the profile (INQUEUE3, INQUEUE,
         * SYSTEM, site queues): only queues have sessions. */
        bool is_queue;
        PoLockProtocol lock_protocol; /* SESSION_LOCK only */
        unsigned process_number;      /* the NN of a .0NN lock file */
        uint32_t message_number;      /* MESSAGE, ENVELOPE, ATTACHMENT */
} PoClass;

typedef struct PoProfile PoProfile;

/* The built-in Microsoft Mail 3.x profile. Never fails. */
PoProfile *po_profile_new_default(void);
/* Loads a profile; on error returns NULL and sets @error with the file, line
 * where known, and reason. */
/* A profile is a small text file: larger ones are refused. */
#define PO_PROFILE_MAX_BYTES (1024 * 1024)

PoProfile *po_profile_load(const char *path, GError **error);
PoProfile *po_profile_load_data(const char *data, gsize len, const char *origin,
                                GError **error);
void po_profile_free(PoProfile *profile);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(PoProfile, po_profile_free)

/* Human-readable name of the profile ("Microsoft Mail 3.x"). */
const char *po_profile_name(const PoProfile *profile);

/* @relpath is relative to the postoffice root, '/' separated, no leading
 * '/'; any case. Fills @out; never fails (unknown paths are PO_ROLE_OTHER). */
void po_classify(const PoProfile *profile, const char *relpath, PoClass *out);

const char *po_role_to_string(PoRole role);
const char *po_lock_protocol_to_string(PoLockProtocol protocol);

/* Read-only views of a loaded profile, for tools that build or check a
 * postoffice. Lists are NULL-terminated, names upper case; all owned by the
 * profile. */
const char *const *po_profile_folders(const PoProfile *profile);
/* "MA": message n lives in MAI/MA<last hex digit of n>. */
const char *po_profile_message_subfolder_prefix(const PoProfile *profile);
/* "AT": attachments live in ATT/AT<last hex digit>. */
const char *po_profile_attachment_subfolder_prefix(const PoProfile *profile);
/* "POPULATE.MSM": the marker file every folder holds. */
const char *po_profile_marker(const PoProfile *profile);
const char *const *po_profile_queues(const PoProfile *profile);
/* Whether mailbag @name (any case) is declared a queue. */
bool po_profile_is_queue(const PoProfile *profile, const char *name);
/* "P1": the folder holding lock files. */
const char *po_profile_lock_folder(const PoProfile *profile);
const char *const *po_profile_session_extensions(const PoProfile *profile);
/* Patterns such as "0NN": N is a decimal digit, anything else literal. */
const char *const *po_profile_v20_extensions(const PoProfile *profile);
/* "GLB/CONTROL.GLB" and friends. */
const char *const *po_profile_exclusive_files(const PoProfile *profile);

/* Paths of a postoffice's files, relative to its root, '/' separated: the
 * one place they are spelled. Names are used as given (pass the canonical
 * upper-case ones); numbers are written "%08X". Callers g_free() the
 * result. */
/* "KEY/INQUEUE3.KEY" */
char *po_profile_key_path(const PoProfile *profile, const char *mailbag);
/* "MBG/INQUEUE3.MBG" */
char *po_profile_mbg_path(const PoProfile *profile, const char *mailbag);
/* "P1/INQUEUE3.0LK": @extension ("0LK", "097") in the profile's lock folder. */
char *po_profile_session_lock_path(const PoProfile *profile, const char *mailbag,
                                   const char *extension);
/* "P1/0000000E.P1": the routing envelope of message @number (D, Q100826). */
char *po_profile_envelope_path(const PoProfile *profile, uint32_t number);
/* "MAI/MAE": the folder of message @number, from the profile's prefix. */
char *po_profile_message_folder(const PoProfile *profile, uint32_t number);
/* "MAI/MAE/0000000E.MAI" */
char *po_profile_message_path(const PoProfile *profile, uint32_t number);
/* "ATT/ATE" */
char *po_profile_attachment_folder(const PoProfile *profile, uint32_t number);
/* "ATT/ATE/0000000E.ATT" */
char *po_profile_attachment_path(const PoProfile *profile, uint32_t number);

G_END_DECLS
