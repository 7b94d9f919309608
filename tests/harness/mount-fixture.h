/* mount-fixture.h - the steps of a mounted test, on top of
 * mount-harness.h, each failing the test with the daemon's own words when
 * it does not work: what the suites' .init and .fini functions are made
 * of. */
#pragma once

#include "mount-harness.h"

/* mount_harness_setup(): the private directory, with an empty backing/. */
void mount_fixture_setup(MountHarness *h);

/* mount_harness_mount() with the extra daemon arguments @argv (NULL
 * terminated, may be NULL); a failure shows the end of the daemon's log. */
void mount_fixture_mount(MountHarness *h, const char *const *argv);

/* Both: an empty backing directory, mounted. */
void mount_fixture_start(MountHarness *h, const char *const *argv);

/* Expects no line at warning level or worse in the daemon's log. */
void mount_fixture_expect_quiet(const MountHarness *h);

/* Unmounts and removes the directory, expecting a clean exit of the
 * daemon and nothing at warning level or worse in its log but the lines
 * that contain @expected_warning (NULL: none): the .fini of the tests
 * after which the daemon must have had nothing to complain about. */
void mount_fixture_stop(MountHarness *h, const char *expected_warning);
/* The same, with any number of expected warnings (NULL-terminated). */
void mount_fixture_stop_allowing(MountHarness *h, const char *const *expected_warnings);
