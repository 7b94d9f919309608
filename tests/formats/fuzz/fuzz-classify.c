/* fuzz-classify.c - libFuzzer target: po_classify on any path bytes. */
#include "profile.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static PoProfile *profile;
        if (profile == NULL)
                profile = po_profile_new_default();
        g_autofree char *path = g_malloc(size + 1);
        memcpy(path, data, size);
        path[size] = '\0';
        PoClass class;
        po_classify(profile, path, &class);
        if (memchr(class.name, '\0', sizeof class.name) == NULL)
                __builtin_trap();
        return 0;
}
