import Foundation
@testable import K8sMeta
@testable import K8sMetaClient
import PodTapTestSupport
import Testing

private let kubeconfigs = fixtures.appendingPathComponent("kubeconfigs")
private func bytes(_ path: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(path))) }
private func kubeconfig(_ name: String, context: String? = nil) throws -> KubeConfiguration {
    try KubeConfiguration.kubeconfig(at: kubeconfigs.appendingPathComponent(name).path, context: context)
}

@Suite struct KubeconfigTests {
    @Test func sanitizedKubeconfigContexts() throws {
        let admin = try kubeconfig("kubeconfig.sanitized.yaml")
        #expect(admin.server == "https://127.0.0.1:6443")
        #expect(admin.namespace == "default")
        #expect(admin.bearerToken == "FAKE-admin-token-0000000000000000000000000000000")
        #expect(admin.certificateAuthorityPEM == (try bytes("tls/ca.crt")))
        #expect(admin.clientCertificatePEM == nil)

        let cert = try kubeconfig("kubeconfig.sanitized.yaml", context: "kapi-cert")
        #expect(cert.bearerToken == nil)
        #expect(cert.clientCertificatePEM == (try bytes("tls/client.crt")))
        #expect(cert.clientKeyPEM == (try bytes("tls/client.key")))

        let viewer = try kubeconfig("kubeconfig.sanitized.yaml", context: "kapi-viewer")
        #expect(viewer.bearerToken == "FAKE-viewer-token-000000000000000000000000000000")

        #expect(
            try KubeConfiguration.contextNames(inKubeconfigAt: kubeconfigs.appendingPathComponent("kubeconfig.sanitized.yaml").path)
                == ["kapi", "kapi-cert", "kapi-viewer"])
        let error = #expect(throws: KubeConfigurationError.self) {
            try kubeconfig("kubeconfig.sanitized.yaml", context: "nope")
        }
        #expect(error?.code == .contextNotFound)
        #expect(error?.detail.contains("kapi-viewer") == true)
    }

    @Test func descriptionNeverShowsSecrets() throws {
        for (file, context) in [
            ("kubeconfig.sanitized.yaml", "kapi"), ("kubeconfig.sanitized.yaml", "kapi-cert"),
            ("insecure-skip-tls-verify.yaml", nil), ("namespace-in-context.yaml", nil),
        ] {
            let config = try kubeconfig(file, context: context)
            let text = "\(config)"
            var dumped = ""
            dump(config, to: &dumped)
            if let token = config.bearerToken {
                #expect(!text.contains(token))
                #expect(!dumped.contains(token))
                #expect(!String(reflecting: config).contains(token))
                #expect(text.contains("redacted"))
            }
            if let key = config.clientKeyPEM {
                #expect(!text.contains(String(decoding: key, as: UTF8.self)))
                #expect(!text.contains("PRIVATE KEY"))
                #expect(!dumped.contains("PRIVATE KEY"))
            }
            #expect(text.contains(config.server))
        }
    }

    @Test func tokenFileAndRelativeCA() async throws {
        let config = try kubeconfig("token-file.yaml")
        #expect(config.tokenFile == kubeconfigs.appendingPathComponent("files/token").standardized.path)
        #expect(config.certificateAuthorityPEM == (try bytes("tls/ca.crt")))
        let creds = try await CredentialSource(configuration: config).current()
        #expect(creds.bearerToken == "FAKE-token-read-from-file-00000000000000000000")
    }

    @Test func clientCertificateFiles() throws {
        let config = try kubeconfig("client-cert-files.yaml")
        #expect(config.server == "https://localhost:6443")
        #expect(config.clientCertificatePEM == (try bytes("tls/client.crt")))
        #expect(config.clientKeyPEM == (try bytes("tls/client.key")))
        #expect(config.certificateAuthorityPEM == (try bytes("tls/ca.crt")))
        // Absolute paths are kept as they are; here they do not exist.
        let error = #expect(throws: KubeConfigurationError.self) { try kubeconfig("client-cert-files.yaml", context: "absolute") }
        #expect(error?.code == .fileUnreadable)
        #expect(error?.detail.contains("/etc/kubernetes/pki/apiserver-kubelet-client.crt") == true)
    }

    @Test func insecureSkipTLSVerify() throws {
        let config = try kubeconfig("insecure-skip-tls-verify.yaml")
        #expect(config.insecureSkipTLSVerify)
        #expect(config.certificateAuthorityPEM == nil)
        #expect(config.bearerToken == "FAKE-insecure-token-00000000000000000000000000")
    }

    @Test func namespaceFromContext() throws {
        #expect(try kubeconfig("namespace-in-context.yaml").namespace == "demo")
        #expect(try kubeconfig("namespace-in-context.yaml", context: "no-ns-ctx").namespace == "default")
    }

    @Test func execPluginTokenAndCertificate() async throws {
        let config = try kubeconfig("exec-plugin.yaml")
        #expect(config.tlsServerName == "kubernetes.default.svc")
        let exec = try #require(config.exec)
        #expect(exec.command == "./files/fake-exec-plugin.sh")
        #expect(exec.args == ["get-token", "--cluster=local"])
        #expect(exec.env.map(\.name) == ["FAKE_PLUGIN_MODE", "AWS_PROFILE"])
        #expect(exec.provideClusterInfo)
        #expect(
            try ExecPluginRunner.resolveCommand(exec, environment: [:])
                == kubeconfigs.appendingPathComponent("files/fake-exec-plugin.sh").standardized.path)

        let info = try JSONSerialization.jsonObject(with: Data(ExecPluginRunner.execInfo(exec, cluster: config).utf8))
        let spec = (info as? [String: Any])?["spec"] as? [String: Any]
        let cluster = spec?["cluster"] as? [String: Any]
        #expect(cluster?["server"] as? String == "https://127.0.0.1:6443")
        #expect(cluster?["tls-server-name"] as? String == "kubernetes.default.svc")
        #expect(spec?["interactive"] as? Bool == false)

        let token = try await ExecPluginRunner.run(exec, cluster: config)
        #expect(token.credentials.bearerToken == "FAKE-exec-plugin-token-0000000000000000000000")
        #expect(token.expiresAt == ISO8601DateFormatter().date(from: "2036-01-01T00:00:00Z"))

        var certMode = exec
        certMode.env = [.init(name: "FAKE_PLUGIN_MODE", value: "cert")]
        let cert = try await ExecPluginRunner.run(certMode, cluster: config)
        #expect(cert.credentials.bearerToken == nil)
        #expect(cert.credentials.clientCertificatePEM == (try bytes("tls/client.crt")))
        #expect(cert.credentials.clientKeyPEM == (try bytes("tls/client.key")))
        #expect(cert.expiresAt == nil)
    }

    @Test func execPluginMissingFromPathNamesCommandAndHint() async throws {
        let config = try kubeconfig("exec-plugin.yaml", context: "path-plugin")
        let exec = try #require(config.exec)
        #expect(exec.command == "kubectl-fake-login")
        let error = #expect(throws: KubeConfigurationError.self) {
            try ExecPluginRunner.resolveCommand(exec, environment: ["PATH": "/nonexistent-podtap"])
        }
        #expect(error?.code == .execPluginNotFound)
        #expect(error?.detail.contains("kubectl-fake-login") == true)

        var missing = try #require(try kubeconfig("exec-plugin.yaml").exec)
        missing.command = "./files/no-such-plugin"
        let hinted = #expect(throws: KubeConfigurationError.self) {
            try ExecPluginRunner.resolveCommand(missing, environment: [:])
        }
        #expect(hinted?.detail.contains("fake-exec-plugin.sh ships with these fixtures") == true)
    }

    @Test func kubeconfigLookup() throws {
        let dir = try TemporaryDirectory()
        defer { dir.cleanup() }
        let existing = kubeconfigs.appendingPathComponent("token-file.yaml").path
        #expect(
            KubeConfiguration.defaultKubeconfigPath(environment: ["KUBECONFIG": "\(dir.path("none")):\(existing)"])
                == existing)
        #expect(KubeConfiguration.defaultKubeconfigPath(environment: ["KUBECONFIG": dir.path("none")]) == nil)
        try FileManager.default.createDirectory(atPath: dir.path(".kube"), withIntermediateDirectories: true)
        #expect(KubeConfiguration.defaultKubeconfigPath(environment: ["HOME": dir.url.path]) == nil)
        try Data("apiVersion: v1\n".utf8).write(to: URL(fileURLWithPath: dir.path(".kube/config")))
        #expect(KubeConfiguration.defaultKubeconfigPath(environment: ["HOME": dir.url.path]) == dir.path(".kube/config"))
    }

    @Test func invalidYAMLIsAnError() throws {
        let error = #expect(throws: KubeConfigurationError.self) {
            try KubeConfiguration.kubeconfig(yaml: "clusters: [ {", baseDirectory: "/")
        }
        #expect(error?.code == .invalidKubeconfig)
    }
}

@Suite struct InClusterConfigurationTests {
    let serviceAccount = fixtures.appendingPathComponent("serviceaccount").path

    @Test func fromServiceAccountDirectory() throws {
        let config = try KubeConfiguration.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: serviceAccount)
        #expect(config.server == "https://10.96.0.1:443")
        #expect(config.namespace == "demo")
        #expect(config.certificateAuthorityPEM == (try bytes("serviceaccount/ca.crt")))
        #expect(config.tokenFile == serviceAccount + "/token")
        let token = try String(contentsOfFile: serviceAccount + "/token", encoding: .utf8)
        #expect(!"\(config)".contains(token))
    }

    @Test func ipv6HostIsBracketed() throws {
        let config = try KubeConfiguration.inCluster(
            environment: ["KUBERNETES_SERVICE_HOST": "fd00:10:96::1", "KUBERNETES_SERVICE_PORT": "443"],
            serviceAccountDirectory: serviceAccount)
        #expect(config.server == "https://[fd00:10:96::1]:443")
    }

    @Test func outsideAPodIsAClearError() throws {
        let error = #expect(throws: KubeConfigurationError.self) {
            try KubeConfiguration.inCluster(environment: [:], serviceAccountDirectory: serviceAccount)
        }
        #expect(error?.code == .notInCluster)
        let noToken = #expect(throws: KubeConfigurationError.self) {
            try KubeConfiguration.inCluster(
                environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
                serviceAccountDirectory: "/nonexistent-podtap-sa")
        }
        #expect(noToken?.code == .fileUnreadable)
    }
}
