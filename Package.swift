// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "UtilbotGateway",
    products: [
        .library(name: "utilbot_gateway", type: .dynamic, targets: ["UtilbotGatewayC"]),
        .executable(name: "utilbot-gateway", targets: ["utilbot-gateway"]),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(name: "CSystem"),
        .target(
            name: "UtilbotGateway",
            dependencies: ["COpenSSL", "CZlib", "CSystem", "UtilbotGatewayTypes"]
        ),
        .target(name: "UtilbotGatewayTypes"),
        .target(name: "UtilbotGatewayC", dependencies: ["UtilbotGateway", "UtilbotGatewayTypes"]),
        .executableTarget(name: "utilbot-gateway", dependencies: ["UtilbotGatewayC", "UtilbotGatewayTypes"]),
        .testTarget(name: "CodecTests", dependencies: ["UtilbotGateway", "CZlib"]),
        .testTarget(name: "WebSocketTests", dependencies: ["UtilbotGateway"]),
        .testTarget(name: "TransportTests", dependencies: ["UtilbotGateway"]),
        .testTarget(name: "GatewayTests", dependencies: ["UtilbotGateway"]),
        .testTarget(name: "CABIUnitTests", dependencies: ["UtilbotGatewayC", "UtilbotGateway", "UtilbotGatewayTypes"]),
    ]
)
