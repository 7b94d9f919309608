/* profile-private.h - the layout of a loaded PoProfile, shared by the loader
 * (profile.c) and the classifier (classify.c). Private to formats/.
 *
 * Invariant: once po_profile_load*() returns, nothing writes to a PoProfile
 * until po_profile_free(); every name is upper case and validated, so the
 * classifier can compare with strcmp and never re-check. */
#pragma once

#include "profile.h"

/* Longest subfolder prefix: prefix + one hex digit is an 8-char base. */
#define PO_PROFILE_PREFIX_MAX 8

struct PoProfile {
        char *name;
        char **folders;
        char message_prefix[PO_PROFILE_PREFIX_MAX];
        char attachment_prefix[PO_PROFILE_PREFIX_MAX];
        char *marker;
        char **queues;
        char *lock_folder;
        char **session_extensions;
        char **v20_extensions;
        char **exclusive_files;
};

/* A v20 pattern such as "0NN" matches @ext ("042"); sets the process number
 * read from the N positions. */
bool po_profile_v20_match(const char *pattern, const char *ext,
                          unsigned *process_number);

/* The mailbag paths for code that has no profile at hand (po_mailbag_load
 * and _save): the same spelling po_profile_key_path() and
 * po_profile_mbg_path() use, since a mailbag's folders are fixed. */
char *po_paths_key(const char *mailbag);
char *po_paths_mbg(const char *mailbag);
