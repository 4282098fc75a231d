// The C headers of Xen's toolstack libraries (libxl, libxlutil, xenstore,
// xentoollog), included once, the same way, by every file of lib/xen. They
// carry no `extern "C"` guards of their own.
// LIBXL_API_VERSION (pinned by CMake to 0x041400, the newest that Debian 12's
// Xen 4.17 accepts) keeps libxl's API stable across Xen upgrades: the
// asynchronous-capable calls take an `ao_how` (nullptr: synchronous).
#pragma once

#ifndef LIBXL_API_VERSION
#error "LIBXL_API_VERSION must come from the build (lib/xen/CMakeLists.txt)"
#endif

extern "C" {
#include <libxl.h>
#include <libxl_utils.h>
#include <libxlutil.h>
#include <xenstore.h>
#include <xentoollog.h>
}
