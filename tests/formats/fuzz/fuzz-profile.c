/* fuzz-profile.c - libFuzzer target: po_profile_load_data on any bytes, and
 * the classifier on whatever profile comes out. */
#include "profile.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const char *const paths[] = {
                "KEY/INQUEUE3.KEY", "P1/INQUEUE3.0LK", "P1/INQUEUE3.097", "GLB/CONTROL.GLB",
                "MAI/MAE/0009DF5E.MAI", "P1/0000000E.P1", "ATT/AT0/00000010.ATT", "X/Y/Z",
        };
        g_autoptr(GError) error = NULL;
        g_autoptr(PoProfile) profile = po_profile_load_data((const char *)data, size, "fuzz", &error);
        if (profile == NULL)
                return 0;
        for (gsize i = 0; i < G_N_ELEMENTS(paths); i++) {
                PoClass class;
                po_classify(profile, paths[i], &class);
        }
        return 0;
}
