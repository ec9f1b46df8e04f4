package zego.express

import zego.express.ffi.Native

/** A ZEGO error code returned by the SDK, with its message and the C function that returned it. */
class ZegoException(
    /** The number; compare it with the [ErrorCode] constants. */
    val code: Int,
    message: String? = null,
    /** The C function that returned the code, when there was one. */
    val function: String? = null
) : RuntimeException(describe(code, message, function)) {
    /** The constant name of [code] in [ErrorCode], or null when this version does not know it. */
    val codeName: String? get() = ErrorCode.nameOf(code)

    companion object {
        private fun describe(code: Int, message: String?, function: String?): String {
            val name = ErrorCode.nameOf(code)?.let { " $it" } ?: ""
            val where = if (function != null) "$function: " else ""
            return "$where$code$name: ${message ?: ZegoExpress.errorMessage(code)}"
        }

        /** Throws for a non-zero code. */
        @JvmStatic
        internal fun check(code: Int, function: String) {
            if (code != 0) throw ZegoException(code, null, function)
        }
    }
}

/** Process-wide functions: version, error messages, logging, and where handler exceptions are reported. */
object ZegoExpress {
    /** The SDK version, e.g. "0.1.0". */
    @JvmStatic
    val version: String get() = Native.zego_get_version() ?: ""

    /** The SDK's message for an error code. */
    @JvmStatic
    fun errorMessage(code: Int): String = Native.zego_get_error_message(code) ?: ""

    /** Lets log lines at [level] and more severe through. */
    @JvmStatic
    fun setLogLevel(level: LogLevel) = ZegoException.check(Native.zego_set_log_level(level.value), "zego_set_log_level")

    /** Appends log lines to the file at [path], or stops when it is null. */
    @JvmStatic
    fun setLogFile(path: String?) = ZegoException.check(Native.zego_set_log_file(path), "zego_set_log_file")

    /** Receives every log line that passes the level, on whichever thread logged; null stops. */
    interface LogHandler {
        fun onLog(level: LogLevel, message: String)
    }

    /** Sends log lines to [handler]; an exception it throws is reported like a handler exception and dropped. */
    @JvmStatic
    fun setLogHandler(handler: LogHandler?) {
        val callback = if (handler == null) null else object : zego.express.ffi.LogCallback {
            override fun invoke(level: LogLevel, message: String) {
                guard("onLog") { handler.onLog(level, message) }
            }
        }
        ZegoException.check(Native.zego_set_log_callback(callback), "zego_set_log_callback")
    }

    /** Receives exceptions thrown by handlers (they never reach the SDK); by default they are printed to stderr. */
    interface CallbackExceptionHandler {
        fun onCallbackException(event: String, exception: Throwable)
    }

    @JvmStatic
    @Volatile
    var callbackExceptionHandler: CallbackExceptionHandler? = null

    internal inline fun guard(event: String, body: () -> Unit) {
        try {
            body()
        } catch (t: Throwable) {
            report(event, t)
        }
    }

    @JvmStatic
    internal fun report(event: String, exception: Throwable) {
        try {
            val handler = callbackExceptionHandler
            if (handler != null) {
                handler.onCallbackException(event, exception)
            } else {
                System.err.println("zego_express: the $event handler threw: $exception")
                exception.printStackTrace()
            }
        } catch (ignored: Throwable) {
            // The reporter threw too; nothing more can be done without risking the SDK's thread.
        }
    }
}
