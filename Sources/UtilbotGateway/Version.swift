/// The library's version: ubg_version(), the User-Agent of the upgrade request. The Python
/// package's version (bindings/python/utilbot_gateway/_version.py) is checked against it.
package let libraryVersion = "0.1.0"
