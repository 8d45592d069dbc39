/* exporter.h - TEMPORARY umbrella while the restructure lands: includes every module header of
 * exporter/. Include the module headers themselves (flags.h, state.h, selfmetrics.h, net.h,
 * http/http.h); this file goes away. */
#ifndef ABACUS_EXPORTER_H
#define ABACUS_EXPORTER_H

#include "flags.h"
#include "http/http.h"
#include "net.h"
#include "selfmetrics.h"
#include "state.h"
#include "version.h"

#endif
