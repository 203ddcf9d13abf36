package vecleak.servers;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.settings.Settings;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Runs one real OpenSearch node inside this JVM, with modules taken from the classpath.
 *
 * Why embedded: OpenSearch ships no server in PyPI/npm/Debian, and its tarball is a vendor download;
 * every module jar (and the k-NN plugin zip) is on Maven Central, so a Node subclass is the way to a
 * genuine server here. Args: HTTP port, home directory (fresh or reused; data lives under it).
 */
public final class OpenSearchLauncher {

    static final class EmbeddedNode extends Node {
        EmbeddedNode(Settings settings, Collection<Class<? extends Plugin>> plugins) {
            super(InternalSettingsPreparer.prepareEnvironment(settings, Map.of(), null, () -> "vecleak-os"),
                  plugins, true);
        }

        @Override
        protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
            // The default registers a static listener meant for the packaged server's logging; not needed here.
        }
    }

    @SuppressWarnings("unchecked")
    private static void optional(List<Class<? extends Plugin>> plugins, String className) {
        try {
            plugins.add((Class<? extends Plugin>) Class.forName(className));
        } catch (ClassNotFoundException e) {
            System.err.println("plugin not on classpath, skipped: " + className);
        }
    }

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        Path home = Path.of(args[1]).toAbsolutePath();
        Files.createDirectories(home.resolve("modules"));
        Files.createDirectories(home.resolve("plugins"));
        Files.createDirectories(home.resolve("config"));
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "vecleak-test-os")
            .put("node.name", "vecleak-os")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", port)
            .put("transport.port", String.valueOf(port + 100))
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true)
            .build();
        List<Class<? extends Plugin>> plugins = new ArrayList<>();
        optional(plugins, "org.opensearch.transport.Netty4Plugin");
        optional(plugins, "org.opensearch.analysis.common.CommonAnalysisPlugin");
        optional(plugins, "org.opensearch.painless.PainlessPlugin");
        optional(plugins, "org.opensearch.index.mapper.MapperExtrasPlugin");
        optional(plugins, "org.opensearch.index.reindex.ReindexPlugin");
        optional(plugins, "org.opensearch.knn.plugin.KNNPlugin");
        Node node = new EmbeddedNode(settings, plugins);
        node.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
            } catch (Exception ignored) {
                // shutting down anyway
            }
        }));
        System.out.println("READY http://127.0.0.1:" + port);
        System.out.flush();
        new CountDownLatch(1).await();
    }
}
