// A minimal Utilbot bot in C++ (bindings/cpp): connect, identify, report servers, print
// events, close. Build: c++ -std=c++17 bot.cpp $(pkg-config --cflags --libs utilbot-gateway)
//   -I../../bindings/cpp/include       Run: ./bot wss://gateway.utilbot.co/ YOUR_KEY [CA_FILE]
#include <utilbot/gateway.hpp>

#include <chrono>
#include <iostream>

int main(int argc, char **argv) {
    if (argc < 3) {
        std::cerr << "usage: " << argv[0] << " URL KEY [CA_FILE]\n";
        return 2;
    }
    try {
        utilbot::Client client(argv[2]);
        client.url(argv[1]);
        if (argc > 3) client.tls_ca(argv[3]);
        client.connect();
        // Pull mode: events come to this thread, one at a time, for as long as the client lives.
        while (auto event = client.next_event(std::chrono::seconds(30))) {
            switch (event->type) {
            case utilbot::EventType::ready:
                std::cout << "ready: identified with the gateway\n";
                client.send("send_servers",
                            R"({"guilds":42,"guildMembers":1337,"cachedGuildMembers":512})");
                break;
            case utilbot::EventType::dispatch:
                std::cout << "event " << event->name << ": " << event->data << "\n";
                if (event->name == "GLOBAL_GUILD_COUNT") client.close(1000); // the demo is over
                break;
            case utilbot::EventType::error:
                std::cout << "error " << event->code << ": " << event->message << "\n";
                break;
            case utilbot::EventType::closed:
                std::cout << "closed with " << event->code
                          << (event->reconnect ? ", reconnecting" : "") << "\n";
                break;
            case utilbot::EventType::fatal:
                std::cout << "fatal: " << event->message << "\n";
                break;
            default:
                break;
            }
        }
        return client.state() == utilbot::State::closed ? 0 : 1;
    } catch (const utilbot::Error &error) {
        std::cerr << error.what() << "\n";
        return 1;
    }
}
