/* profile-default.h - the default profile text, generated at build time from
 * profiles/msmail3.profile by embed-profile.py. Private to formats/. */
#pragma once

#include <glib.h>

extern const char po_profile_default_text[];
extern const gsize po_profile_default_len;
