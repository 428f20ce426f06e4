# Debian packages of the three programs (`./run package` → build/packages/*.deb):
#   roam-signaling  /usr/bin/roam-signaling, roam-signaling.service, /etc/roam/signaling.{toml,env}
#   roam-relay      /usr/bin/roam-relay, roam-relay.service, /etc/roam/relay.{toml,env}
#   roam            /usr/bin/roam, roam-agent.service, /etc/roam/agent.{toml,env}, roam(1)
# Binaries come from install() rules at the end of each component's CMakeLists.txt; the
# units, configurations and maintainer scripts from deploy/. Runtime dependencies are found by
# dpkg-shlibdeps (dpkg-dev). docs/deploy.md describes installing and configuring them.

set(ROAM_DEPLOY_DIR ${PROJECT_SOURCE_DIR}/deploy)
set(ROAM_SYSTEMD_DIR /lib/systemd/system)

# component;package;unit;etc files;secret files;extra state dirs;summary
set(ROAM_PACKAGES
  "signaling|roam-signaling|roam-signaling.service|signaling.toml signaling.env|/etc/roam/signaling.env||WebSocket-over-TLS rendezvous server for roam agents"
  "relay|roam-relay|roam-relay.service|relay.toml relay.env|/etc/roam/relay.env||sidecar of one coturn: TURN reservation token pool and relay registry"
  "agent|roam|roam-agent.service|agent.toml agent.env||/var/lib/roam/incoming|agent: one encrypted QUIC connection between two endpoints, relayed then direct")

foreach(entry IN LISTS ROAM_PACKAGES)
  string(REPLACE "|" ";" fields "${entry}")
  list(GET fields 0 comp)
  list(GET fields 1 pkg)
  list(GET fields 2 unit)
  list(GET fields 3 etc_files)
  list(GET fields 4 secret_files)
  list(GET fields 5 dirs)
  list(GET fields 6 summary)
  string(TOUPPER ${comp} COMP)
  separate_arguments(etc_files)

  install(FILES ${ROAM_DEPLOY_DIR}/systemd/${unit} DESTINATION ${ROAM_SYSTEMD_DIR}
          COMPONENT ${comp})
  set(conffiles "")
  foreach(f IN LISTS etc_files)
    # Secrets templates are installed 0640 (postinst sets the group to roam).
    if(f MATCHES "\\.env$")
      install(FILES ${ROAM_DEPLOY_DIR}/etc/${f} DESTINATION /etc/roam COMPONENT ${comp}
              PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ)
    else()
      install(FILES ${ROAM_DEPLOY_DIR}/etc/${f} DESTINATION /etc/roam COMPONENT ${comp})
    endif()
    string(APPEND conffiles "/etc/roam/${f}\n")
  endforeach()
  install(FILES ${ROAM_DEPLOY_DIR}/../docs/deploy.md DESTINATION share/doc/${pkg}
          COMPONENT ${comp})

  set(PKG ${pkg})
  set(UNIT ${unit})
  set(SECRET_FILES "${secret_files}")
  set(DIRS "${dirs}")
  set(script_dir ${CMAKE_BINARY_DIR}/packaging/${pkg})
  foreach(script postinst prerm postrm)
    configure_file(${ROAM_DEPLOY_DIR}/debian/${script}.in ${script_dir}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                                    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  file(WRITE ${script_dir}/conffiles "${conffiles}")

  set(CPACK_DEBIAN_${COMP}_PACKAGE_NAME ${pkg})
  set(CPACK_DEBIAN_${COMP}_FILE_NAME "${pkg}_${PROJECT_VERSION}_amd64.deb")
  set(CPACK_DEBIAN_${COMP}_PACKAGE_DEPENDS "adduser")
  set(CPACK_DEBIAN_${COMP}_PACKAGE_SECTION net)
  set(CPACK_COMPONENT_${COMP}_DESCRIPTION "Roam ${summary}")
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_EXTRA
      "${script_dir}/postinst;${script_dir}/prerm;${script_dir}/postrm;${script_dir}/conffiles")
  set(CPACK_DEBIAN_${COMP}_PACKAGE_CONTROL_STRICT_PERMISSION ON)
endforeach()

install(FILES ${ROAM_DEPLOY_DIR}/man/roam.1 DESTINATION share/man/man1 COMPONENT agent)
set(CPACK_DEBIAN_RELAY_PACKAGE_SUGGESTS "coturn, redis-server")
set(CPACK_DEBIAN_SIGNALING_PACKAGE_SUGGESTS "redis-server, haproxy")

# `./run package` builds the three programs first; packaging must not build the tests too.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME roam)
set(CPACK_PACKAGE_VENDOR "Roam")
set(CPACK_PACKAGE_CONTACT "Roam maintainers <roam@example.com>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Roam: relay-first QUIC connections that migrate across networks")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_COMPONENTS_ALL signaling relay agent)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.com/roam")
set(CPACK_STRIP_FILES ON)
include(CPack)
