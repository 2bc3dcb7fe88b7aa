import UtilbotGatewayTypes

/// The library's version: ubg_version(), the User-Agent of the upgrade request. Written once, in
/// the C header's UBG_VERSION_ macros (Sources/UtilbotGatewayTypes/include/utilbot_gateway_types.h).
package let libraryVersion = UBG_VERSION_STRING
