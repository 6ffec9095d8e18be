# SPDX-License-Identifier: MIT
"""Where, under the install prefix, this python3 looks for packages:
python/meson.build installs python/iovm there.

Meson's own answer (the python module's get_install_dir()) is Debian's
deb_system scheme, prefix/lib/python3/dist-packages, which Debian's
python3 searches under /usr but not under /usr/local (it searches
/usr/local/lib/python3.X/dist-packages there). So: the first of the
site directories of the prefix that sys.path holds; else the purelib
path of Debian's scheme (as meson's) or of the default one. Prints it
relative to the prefix.
"""

import os
import site
import sys
import sysconfig

prefix = os.path.normpath(sys.argv[1])
for d in site.getsitepackages([prefix]):
    if d.startswith(prefix + "/lib/") and d in sys.path:
        print(os.path.relpath(d, prefix))
        sys.exit(0)
scheme = "deb_system" if "deb_system" in sysconfig.get_scheme_names() else sysconfig.get_default_scheme()
purelib = sysconfig.get_path("purelib", scheme, vars={"base": prefix, "platbase": prefix,
                                                      "installed_base": prefix})
print(os.path.relpath(purelib, prefix))
