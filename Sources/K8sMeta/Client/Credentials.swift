// The credentials sent with each request: a fixed token, a token file re-read when it rotates,
// a client certificate, or what an exec plugin printed (cached until it expires).
import K8sMeta
import Foundation
import Synchronization

/// What one request authenticates with.
struct ResolvedCredentials: Sendable, Equatable {
    var bearerToken: String?
    var clientCertificatePEM: [UInt8]?
    var clientKeyPEM: [UInt8]?
}

/// Produces the current credentials of a ``KubeConfiguration``; shared by all requests of a client.
final class CredentialSource: Sendable {
    let configuration: KubeConfiguration
    /// Re-read the token file at least this often even if its mtime did not change.
    let tokenFileMaximumAge: Duration

    private struct TokenFileCache {
        var token: String
        var modificationDate: Date?
        var size: Int?
        var readAt: ContinuousClock.Instant
    }
    private struct ExecCache {
        var credentials: ResolvedCredentials
        var expiresAt: Date?
    }
    private let tokenCache = Mutex<TokenFileCache?>(nil)
    private let execCache = Mutex<ExecCache?>(nil)

    init(configuration: KubeConfiguration, tokenFileMaximumAge: Duration = .seconds(60)) {
        self.configuration = configuration
        self.tokenFileMaximumAge = tokenFileMaximumAge
    }

    /// Every secret this source has handed out, to scrub from error messages.
    var knownSecrets: [String] {
        var secrets: [String] = []
        if let t = configuration.bearerToken { secrets.append(t) }
        if let t = tokenCache.withLock({ $0?.token }) { secrets.append(t) }
        if let t = execCache.withLock({ $0?.credentials.bearerToken }) { secrets.append(t) }
        return secrets.filter { !$0.isEmpty }
    }

    /// Forgets cached exec credentials (after a 401, so the plugin runs again).
    func invalidate() {
        execCache.withLock { $0 = nil }
        tokenCache.withLock { $0 = nil }
    }

    /// The credentials for the next request.
    /// - Throws: ``KubeConfigurationError`` when a token file or exec plugin fails.
    func current() async throws -> ResolvedCredentials {
        var result = ResolvedCredentials(
            bearerToken: configuration.bearerToken, clientCertificatePEM: configuration.clientCertificatePEM,
            clientKeyPEM: configuration.clientKeyPEM)
        if let path = configuration.tokenFile {
            result.bearerToken = try tokenFromFile(path)
        }
        if let exec = configuration.exec {
            let fromPlugin = try await execCredentials(exec)
            if let token = fromPlugin.bearerToken { result.bearerToken = token }
            if fromPlugin.clientCertificatePEM != nil {
                result.clientCertificatePEM = fromPlugin.clientCertificatePEM
                result.clientKeyPEM = fromPlugin.clientKeyPEM
            }
        }
        return result
    }

    private func tokenFromFile(_ path: String) throws -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let mtime = attributes?[.modificationDate] as? Date
        let size = (attributes?[.size] as? NSNumber)?.intValue
        let now = ContinuousClock.now
        if let cached = tokenCache.withLock({ $0 }), cached.modificationDate == mtime, cached.size == size,
            now - cached.readAt < tokenFileMaximumAge
        {
            return cached.token
        }
        let token: String
        do {
            token = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            // Keep using the last good token if the kubelet is mid-rotation.
            if let cached = tokenCache.withLock({ $0 }) { return cached.token }
            throw KubeConfigurationError(.fileUnreadable, "cannot read token file \(path)")
        }
        tokenCache.withLock { $0 = TokenFileCache(token: token, modificationDate: mtime, size: size, readAt: now) }
        return token
    }

    private func execCredentials(_ plugin: ExecPlugin) async throws -> ResolvedCredentials {
        if let cached = execCache.withLock({ $0 }) {
            if let expiry = cached.expiresAt {
                if expiry.timeIntervalSinceNow > 10 { return cached.credentials }
            } else {
                return cached.credentials
            }
        }
        let output = try await ExecPluginRunner.run(plugin, cluster: configuration)
        execCache.withLock { $0 = ExecCache(credentials: output.credentials, expiresAt: output.expiresAt) }
        return output.credentials
    }
}

/// Runs a credential plugin the way kubectl does.
enum ExecPluginRunner {
    struct Output: Sendable {
        var credentials: ResolvedCredentials
        var expiresAt: Date?
    }

    /// The executable for `plugin.command`: against the kubeconfig's directory when it contains
    /// a path separator, else the first match in `PATH`.
    static func resolveCommand(_ plugin: ExecPlugin, environment: [String: String]) throws(KubeConfigurationError)
        -> String
    {
        let command = plugin.command
        let hint = plugin.installHint.map { "\n\($0.trimmingCharacters(in: .whitespacesAndNewlines))" } ?? ""
        if command.contains("/") {
            let path =
                command.hasPrefix("/")
                ? command
                : URL(fileURLWithPath: plugin.baseDirectory ?? FileManager.default.currentDirectoryPath)
                    .appendingPathComponent(command).standardized.path
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw KubeConfigurationError(
                    .execPluginNotFound, "exec credential plugin \(path) not found or not executable\(hint)")
            }
            return path
        }
        let searchPath = environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in searchPath.split(separator: ":") {
            let candidate = "\(dir)/\(command)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw KubeConfigurationError(
            .execPluginNotFound, "exec credential plugin \"\(command)\" not found in PATH (\(searchPath))\(hint)")
    }

    /// `KUBERNETES_EXEC_INFO`: an ExecCredential whose spec tells the plugin whether it may prompt
    /// and, with `provideClusterInfo`, which cluster it serves.
    static func execInfo(_ plugin: ExecPlugin, cluster: KubeConfiguration) -> String {
        var spec: [String: Any] = ["interactive": false]
        if plugin.provideClusterInfo {
            var c: [String: Any] = ["server": cluster.server]
            if let name = cluster.tlsServerName { c["tls-server-name"] = name }
            if cluster.insecureSkipTLSVerify { c["insecure-skip-tls-verify"] = true }
            if let ca = cluster.certificateAuthorityPEM { c["certificate-authority-data"] = Data(ca).base64EncodedString() }
            spec["cluster"] = c
        }
        let object: [String: Any] = ["apiVersion": plugin.apiVersion, "kind": "ExecCredential", "spec": spec]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func run(
        _ plugin: ExecPlugin, cluster: KubeConfiguration,
        environment: [String: String] = ProcessInfo.processInfo.environment, timeout: Double = 60
    ) async throws -> Output {
        let executable = try resolveCommand(plugin, environment: environment)
        if plugin.interactiveMode == "Always" {
            throw KubeConfigurationError(
                .execPluginFailed,
                "exec credential plugin \(plugin.command) has interactiveMode Always, but PodTap runs without a terminal")
        }
        var env = environment
        for variable in plugin.env { env[variable.name] = variable.value }
        env["KUBERNETES_EXEC_INFO"] = execInfo(plugin, cluster: cluster)
        let processEnvironment = env
        let (status, stdout) = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<(Int32, Data), any Error>) in
            DispatchQueue.global().async {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = plugin.args
                process.environment = processEnvironment
                let out = Pipe()
                process.standardOutput = out
                process.standardInput = FileHandle.nullDevice
                do { try process.run() } catch {
                    continuation.resume(
                        throwing: KubeConfigurationError(
                            .execPluginFailed, "cannot start exec credential plugin \(executable): \(error)"))
                    return
                }
                // A plugin that hangs (waiting for a browser login, say) is killed after `timeout`.
                let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
                DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
                let data = out.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                watchdog.cancel()
                continuation.resume(returning: (process.terminationStatus, data))
            }
        }
        guard status == 0 else {
            throw KubeConfigurationError(.execPluginFailed, "exec credential plugin \(executable) exited with status \(status)")
        }
        return try parse(stdout, plugin: plugin, executable: executable)
    }

    struct ExecCredential: Decodable {
        var apiVersion: String?
        var kind: String?
        var status: Status?
        struct Status: Decodable {
            var token: String?
            var clientCertificateData: String?
            var clientKeyData: String?
            var expirationTimestamp: String?
        }
    }

    static func parse(_ data: Data, plugin: ExecPlugin, executable: String) throws(KubeConfigurationError) -> Output {
        let credential: ExecCredential
        do { credential = try JSONDecoder().decode(ExecCredential.self, from: data) } catch {
            throw KubeConfigurationError(
                .execPluginFailed, "exec credential plugin \(executable) did not print an ExecCredential: \(error)")
        }
        guard credential.kind == "ExecCredential", credential.apiVersion == plugin.apiVersion else {
            throw KubeConfigurationError(
                .execPluginFailed,
                "exec credential plugin \(executable) printed kind \(credential.kind ?? "nil") apiVersion \(credential.apiVersion ?? "nil"), expected ExecCredential \(plugin.apiVersion)"
            )
        }
        guard let status = credential.status else {
            throw KubeConfigurationError(.execPluginFailed, "exec credential plugin \(executable) printed no status")
        }
        let hasCert = status.clientCertificateData != nil && status.clientKeyData != nil
        guard status.token != nil || hasCert else {
            throw KubeConfigurationError(
                .execPluginFailed,
                "exec credential plugin \(executable) printed neither a token nor clientCertificateData + clientKeyData")
        }
        var expiry: Date?
        if let stamp = status.expirationTimestamp {
            expiry = ISO8601DateFormatter().date(from: stamp)
            if expiry == nil {
                throw KubeConfigurationError(
                    .execPluginFailed, "exec credential plugin \(executable): bad expirationTimestamp \(stamp)")
            }
        }
        return Output(
            credentials: ResolvedCredentials(
                bearerToken: status.token,
                clientCertificatePEM: hasCert ? status.clientCertificateData.map { Array($0.utf8) } : nil,
                clientKeyPEM: hasCert ? status.clientKeyData.map { Array($0.utf8) } : nil),
            expiresAt: expiry)
    }
}
