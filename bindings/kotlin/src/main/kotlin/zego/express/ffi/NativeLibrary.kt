package zego.express.ffi

import java.io.File

/**
 * Loads the zego_express library (built with the `jni` feature) once per process: the file named by the system
 * property `zego.express.library` or the environment variable `ZEGO_EXPRESS_LIB`, else `zego_express` from
 * `java.library.path` (on Android, the app's jniLibs).
 */
object NativeLibrary {
    @Volatile
    private var loaded = false

    @JvmStatic
    @Synchronized
    fun load() {
        if (loaded) return
        val explicit = System.getProperty("zego.express.library") ?: System.getenv("ZEGO_EXPRESS_LIB")
        if (explicit != null && explicit.isNotEmpty()) {
            System.load(File(explicit).absolutePath)
        } else {
            System.loadLibrary("zego_express")
        }
        loaded = true
    }
}
