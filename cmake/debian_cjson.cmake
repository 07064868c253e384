# cJSON for a cross build, from Debian's source package: the same version as the host's
# libcjson-dev, so the target runs the parser the host tests ran (Debian's security
# patches included). Fetched at configure time with `apt-get source` (needs deb-src
# entries: ci/install-deps.sh) into <build>/_deps, checked, never committed; a later
# configure reuses it. Defines cJSON::cjson, compiled with the firmware's flags.
#   -DSCANSIM_CJSON_VERSION=1.7.15-1+deb12u4 picks another Debian version.
if(NOT SCANSIM_CJSON_VERSION)
  execute_process(COMMAND dpkg-query -W -f=\${Version} libcjson-dev
    OUTPUT_VARIABLE host_version RESULT_VARIABLE rc ERROR_QUIET)
  if(NOT rc EQUAL 0 OR host_version STREQUAL "")
    message(FATAL_ERROR "cJSON for the target: libcjson-dev is not installed, so its "
      "version is unknown (ci/install-deps.sh), or pass -DSCANSIM_CJSON_VERSION=...")
  endif()
  set(SCANSIM_CJSON_VERSION ${host_version} CACHE STRING "Debian version of cjson to build")
endif()
set(v ${SCANSIM_CJSON_VERSION})
string(REGEX REPLACE "^[0-9]+:" "" v_noepoch "${v}")     # file names carry no epoch
string(REGEX REPLACE "-[^-]*$" "" v_upstream "${v_noepoch}")
set(cj_dir ${CMAKE_BINARY_DIR}/_deps/cjson-${v_noepoch})
set(cj_src ${cj_dir}/src)

if(NOT EXISTS ${cj_src}/cJSON.c)
  file(REMOVE_RECURSE ${cj_dir})
  file(MAKE_DIRECTORY ${cj_dir}/dl)
  message(STATUS "cJSON for the target: apt-get source cjson=${v}")
  execute_process(COMMAND apt-get source --download-only -q cjson=${v}
    WORKING_DIRECTORY ${cj_dir}/dl RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cJSON for the target: `apt-get source cjson=${v}` failed:\n${err}"
      "Is there a deb-src entry for the mirror (ci/install-deps.sh adds one)?")
  endif()
  set(dsc ${cj_dir}/dl/cjson_${v_noepoch}.dsc)
  file(STRINGS ${dsc} dsc_version REGEX "^Version: ")
  if(NOT dsc_version STREQUAL "Version: ${v}")
    message(FATAL_ERROR "cJSON for the target: ${dsc} says '${dsc_version}', wanted ${v}")
  endif()
  # dpkg-source checks every file against the checksums of the .dsc, which apt-get
  # checked against the signed archive index, and applies Debian's patches.
  execute_process(COMMAND dpkg-source --no-copy -x ${dsc} ${cj_src}
    RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    file(REMOVE_RECURSE ${cj_src})
    message(FATAL_ERROR "cJSON for the target: dpkg-source -x ${dsc} failed:\n${err}")
  endif()
endif()

# The source's own version must be the upstream part of the Debian version.
file(STRINGS ${cj_src}/cJSON.h cj_defs REGEX "#define CJSON_VERSION_(MAJOR|MINOR|PATCH) ")
string(REGEX REPLACE ".*MAJOR ([0-9]+).*MINOR ([0-9]+).*PATCH ([0-9]+).*" "\\1.\\2.\\3"
       cj_version "${cj_defs}")
if(NOT cj_version STREQUAL v_upstream)
  message(FATAL_ERROR "cJSON for the target: ${cj_src}/cJSON.h is ${cj_version}, "
    "the package ${v} should be ${v_upstream}")
endif()
message(STATUS "cJSON for the target: ${cj_version} from Debian ${v} (${cj_src})")

# Code includes <cjson/cJSON.h>: give it the package's header under that name.
file(MAKE_DIRECTORY ${cj_dir}/include/cjson)
configure_file(${cj_src}/cJSON.h ${cj_dir}/include/cjson/cJSON.h COPYONLY)
add_library(cjson_target STATIC ${cj_src}/cJSON.c)
target_include_directories(cjson_target SYSTEM PUBLIC ${cj_dir}/include ${cj_src})
add_library(cJSON::cjson ALIAS cjson_target)
set(SCANSIM_CJSON_SOURCE_DIR ${cj_src})
