# Install layout and the Debian package (included from the top CMakeLists.txt
# after server/, so the `warden` target exists).
#
#   bin/warden                      the server
#   share/warden/schema/            the generated JSON Schema (schema/)
#   share/doc/warden/               the contract: every docs/*.md present at
#                                   configure time, plus README.md
#   share/man/man1/warden.1         the man page (man/warden.1.in, written by hand;
#                                   tests/install/test_manpage.py checks it
#                                   against `warden --help`)
#
# server/install_paths.h (generated) tells `warden --help` where these land,
# both as paths relative to bin/ (so a tree installed with
# `cmake --install --prefix P` or unpacked from the .deb names its own files)
# and as the absolute paths of CMAKE_INSTALL_PREFIX (when the binary runs from
# the build tree).
include(GNUInstallDirs)

set(WARDEN_INSTALL_SCHEMADIR ${CMAKE_INSTALL_DATADIR}/warden/schema)
file(GLOB warden_contract_docs CONFIGURE_DEPENDS RELATIVE ${CMAKE_SOURCE_DIR}/docs ${CMAKE_SOURCE_DIR}/docs/*.md)
list(SORT warden_contract_docs)
# protocol.md is the contract: name it first when it is there.
if("protocol.md" IN_LIST warden_contract_docs)
  list(REMOVE_ITEM warden_contract_docs protocol.md)
  list(PREPEND warden_contract_docs protocol.md)
endif()
if(warden_contract_docs)
  set(warden_help_docs ${warden_contract_docs})
else()
  set(warden_help_docs README.md)
endif()
set(warden_help_docs_c "")
foreach(doc ${warden_help_docs})
  list(APPEND warden_help_docs_c "\"${doc}\"")
endforeach()
list(JOIN warden_help_docs_c ", " WARDEN_CONTRACT_FILES_C)

file(RELATIVE_PATH WARDEN_BINDIR_TO_DOCDIR ${CMAKE_INSTALL_FULL_BINDIR} ${CMAKE_INSTALL_FULL_DOCDIR})
file(RELATIVE_PATH WARDEN_BINDIR_TO_SCHEMADIR ${CMAKE_INSTALL_FULL_BINDIR}
     ${CMAKE_INSTALL_PREFIX}/${WARDEN_INSTALL_SCHEMADIR})
set(WARDEN_FULL_SCHEMADIR ${CMAKE_INSTALL_PREFIX}/${WARDEN_INSTALL_SCHEMADIR})
if(IS_ABSOLUTE ${WARDEN_INSTALL_SCHEMADIR})
  set(WARDEN_FULL_SCHEMADIR ${WARDEN_INSTALL_SCHEMADIR})
endif()
configure_file(${CMAKE_SOURCE_DIR}/server/install_paths.h.in
               ${CMAKE_BINARY_DIR}/generated/server/install_paths.h @ONLY)

install(TARGETS warden RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/schema/ DESTINATION ${WARDEN_INSTALL_SCHEMADIR})
foreach(doc ${warden_contract_docs})
  install(FILES ${CMAKE_SOURCE_DIR}/docs/${doc} DESTINATION ${CMAKE_INSTALL_DOCDIR})
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
configure_file(${CMAKE_SOURCE_DIR}/man/warden.1.in ${CMAKE_BINARY_DIR}/man/warden.1 @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/man/warden.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# ---- Debian package: `cpack -G DEB` in the build directory ----
# Depends is computed by dpkg-shlibdeps (dpkg-dev, part of build-essential)
# from the libraries the binary actually links, so it names libjansson4,
# libuv1, libseccomp2 and libc6 today with the versions the build saw, and
# never a library the binary does not load. libcurl4 is only Recommended:
# the binary dlopen()s it when OTLP export is configured (curl_dl.h), and
# runs without telemetry where it is missing. The binary is stripped, as
# Debian policy asks.
set(CPACK_PACKAGE_NAME warden)
set(CPACK_PACKAGE_VENDOR "warden")
set(WARDEN_PACKAGE_MAINTAINER "warden maintainers <warden@localhost>" CACHE STRING
    "Maintainer field of the Debian package (Name <address>); set it when publishing one")
set(CPACK_PACKAGE_CONTACT "${WARDEN_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "command runner for editors and agents: sandboxed PTY/pipe sessions over stdio JSON-RPC")
set(CPACK_PACKAGE_DESCRIPTION
    "warden is started as a child by editors and coding agents and driven over\nstdio with newline-delimited JSON-RPC. It runs commands in PTY or pipe\nsessions inside Linux sandboxes (namespaces, Landlock, seccomp) built from\na policy.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "libcurl4")
set(CPACK_STRIP_FILES ON)
include(CPack)
