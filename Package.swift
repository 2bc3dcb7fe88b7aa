// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "UtilbotGateway",
    products: [
        .library(name: "UtilbotGateway", targets: ["UtilbotGateway"])
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
            dependencies: ["COpenSSL", "CZlib", "CSystem"]
        ),
        .testTarget(name: "CodecTests", dependencies: ["UtilbotGateway", "CZlib"]),
        .testTarget(name: "WebSocketTests", dependencies: ["UtilbotGateway"]),
        .testTarget(name: "TransportTests", dependencies: ["UtilbotGateway"]),
        .testTarget(name: "GatewayTests", dependencies: ["UtilbotGateway"]),
    ]
)
