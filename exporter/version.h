/* version.h - the build's version and source revision. CMake defines both for every target
 * (the revision from git or -DABACUS_REVISION); these fallbacks serve other builds. */
#ifndef ABACUS_VERSION_H
#define ABACUS_VERSION_H

#ifndef ABACUS_VERSION
#define ABACUS_VERSION "0.0.0"
#endif
#ifndef ABACUS_REVISION
#define ABACUS_REVISION "unknown"
#endif

#endif
