/* paths.c - the one spelling of every postoffice path (see profile.h).
 *
 * Fixed folders come from the PO_FOLDER_* names, the hashed subfolder
 * prefixes and the lock folder from the profile, so a profile with
 * message-subfolders=MX gets MAI/MX0..MXF everywhere at once.
 */
#include "profile-private.h"
#include "naming.h"

/* FOLDER/NAME.FOLDER: KEY, MBG and P1 files carry their folder's name. */
static char *paths_in_folder(const char *folder, const char *base)
{
        return g_strdup_printf("%s/%s.%s", folder, base, folder);
}

/* FOLDER/<prefix><d>/<n>.FOLDER, <d> the last hex digit (D, Q87409). */
static char *paths_hashed_folder(const char *folder, const char *prefix, uint32_t number)
{
        return g_strdup_printf("%s/%s%c", folder, prefix, po_naming_subfolder_digit(number));
}

static char *paths_hashed(const char *folder, const char *prefix, uint32_t number)
{
        return g_strdup_printf("%s/%s%c/%08X.%s", folder, prefix,
                               po_naming_subfolder_digit(number), number, folder);
}

char *po_paths_key(const char *mailbag)
{
        return paths_in_folder(PO_FOLDER_KEY, mailbag);
}

char *po_paths_mbg(const char *mailbag)
{
        return paths_in_folder(PO_FOLDER_MBG, mailbag);
}

char *po_profile_key_path(const PoProfile *profile, const char *mailbag)
{
        g_return_val_if_fail(profile != NULL && mailbag != NULL, NULL);
        return po_paths_key(mailbag);
}

char *po_profile_mbg_path(const PoProfile *profile, const char *mailbag)
{
        g_return_val_if_fail(profile != NULL && mailbag != NULL, NULL);
        return po_paths_mbg(mailbag);
}

char *po_profile_session_lock_path(const PoProfile *profile, const char *mailbag,
                                   const char *extension)
{
        g_return_val_if_fail(profile != NULL && mailbag != NULL && extension != NULL, NULL);
        return g_strdup_printf("%s/%s.%s", profile->lock_folder, mailbag, extension);
}

char *po_profile_envelope_path(const PoProfile *profile, uint32_t number)
{
        g_return_val_if_fail(profile != NULL, NULL);
        return g_strdup_printf("%s/%08X.%s", PO_FOLDER_ENVELOPE, number, PO_FOLDER_ENVELOPE);
}

char *po_profile_message_folder(const PoProfile *profile, uint32_t number)
{
        g_return_val_if_fail(profile != NULL, NULL);
        return paths_hashed_folder(PO_FOLDER_MESSAGE, profile->message_prefix, number);
}

char *po_profile_message_path(const PoProfile *profile, uint32_t number)
{
        g_return_val_if_fail(profile != NULL, NULL);
        return paths_hashed(PO_FOLDER_MESSAGE, profile->message_prefix, number);
}

char *po_profile_attachment_folder(const PoProfile *profile, uint32_t number)
{
        g_return_val_if_fail(profile != NULL, NULL);
        return paths_hashed_folder(PO_FOLDER_ATTACHMENT, profile->attachment_prefix, number);
}

char *po_profile_attachment_path(const PoProfile *profile, uint32_t number)
{
        g_return_val_if_fail(profile != NULL, NULL);
        return paths_hashed(PO_FOLDER_ATTACHMENT, profile->attachment_prefix, number);
}
