# Install layout and the Debian package.
#
#   cmake --install build --prefix /opt/uce        # a plain install
#   (cd build && cpack -G DEB)                     # -> build/uce-atlas_<version>_amd64.deb
#
# Layout (prefix /usr in the .deb):
#   bin/uce, bin/uce-atlas
#   share/uce-atlas/human_gene_positions.csv      (uce synth's default gene table)
#   share/uce-atlas/demo/                         (the demo atlas, when UCE_BUILD_DEMO is ON)
#   share/uce-atlas/demo_model/model.torch        (when resources/demo_model/ holds one)
#   share/applications/uce-atlas.desktop, share/icons/hicolor/*/apps/uce-atlas.{svg,png},
#   share/mime/packages/uce-atlas.xml             (desktop entry, icon, .h5ad MIME type)
# The binaries find their data as <dir of the executable>/../share/uce-atlas/ (the CLI's
# resourcePath(), the app's MainWindow::demoDir()), so the paths below use "share" literally.

set(UCE_INSTALL_SHARE share/uce-atlas)

install(TARGETS uce RUNTIME DESTINATION bin)
install(FILES ${UCE_GENE_POSITIONS} DESTINATION ${UCE_INSTALL_SHARE})
# Checked when configuring (install(FILES ... OPTIONAL) would still package an empty folder):
# re-run cmake after adding the model.
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/resources/demo_model/model.torch)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/resources/demo_model/model.torch
          DESTINATION ${UCE_INSTALL_SHARE}/demo_model)
endif()
if(UCE_BUILD_DEMO)
  # Generated at build time by `uce synth` (target demo, part of ALL): six .h5ad + assets/.
  install(DIRECTORY ${UCE_DEMO_DIR}/ DESTINATION ${UCE_INSTALL_SHARE}/demo
          PATTERN demo.stamp EXCLUDE)
endif()

if(UCE_BUILD_GUI)
  install(TARGETS uce-atlas RUNTIME DESTINATION bin)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/resources/uce-atlas.desktop DESTINATION share/applications)
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/resources/icons/uce-atlas.svg
          DESTINATION share/icons/hicolor/scalable/apps)
  foreach(size 48 128 256)
    install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/resources/icons/uce-atlas-${size}.png
            DESTINATION share/icons/hicolor/${size}x${size}/apps RENAME uce-atlas.png)
  endforeach()
  install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/resources/uce-atlas-mime.xml
          DESTINATION share/mime/packages RENAME uce-atlas.xml)
endif()

# --- CPack: one .deb, uce-atlas_<version>_<arch>.deb ---------------------------------------
set(UCE_PACKAGE_MAINTAINER "UCE Atlas maintainers <uce-atlas@users.noreply.github.com>"
    CACHE STRING "Maintainer field of the .deb")
set(CPACK_PACKAGE_NAME uce-atlas)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "UCE Atlas")
set(CPACK_PACKAGE_CONTACT ${UCE_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "explore single-cell atlases with Universal Cell Embeddings")
set(CPACK_PACKAGE_DESCRIPTION
    "UCE Atlas embeds single-cell datasets (.h5ad, 10x .h5, Matrix Market, CSV) zero-shot with a
Universal Cell Embeddings model, maps and clusters them, places them on an atlas, finds
nearest cell types, transfers classifiers and exports annotated embeddings for anndata and
Scanpy. It contains the desktop app uce-atlas and the command-line tool uce.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${UCE_PACKAGE_MAINTAINER})
set(CPACK_DEBIAN_PACKAGE_SECTION science)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: the shared libraries the ELF files need (dpkg-shlibdeps: Qt 6, VTK, LibTorch, HDF5,
# FAISS, igraph, ...), plus what is loaded at run time and so invisible to it: the Qt platform
# plugins (xcb for a desktop, offscreen for headless use). Nothing needs Python.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
if(UCE_BUILD_GUI)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "qt6-qpa-plugins")
endif()
# gzip: quick to build (CI builds the package on every run) and what dpkg reads fastest.
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
include(CPack)

# The package smoke test: build the .deb into a temporary folder, unpack it with dpkg-deb -x
# (nothing is installed into the system) and run what it contains. Needs the whole build.
if(UCE_BUILD_TESTS)
  add_test(NAME installer_test_package
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/installer/check-package.sh
                   ${CMAKE_BINARY_DIR} ${UCE_SHARED_DIR} ${CMAKE_CPACK_COMMAND})
  set_tests_properties(installer_test_package PROPERTIES TIMEOUT 300)
endif()
