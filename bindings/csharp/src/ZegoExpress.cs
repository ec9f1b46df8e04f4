using System;
using System.Collections.Generic;
using Zego.Express.Native;

namespace Zego.Express
{
    /// <summary>A ZEGO error code returned by the SDK, with its message.</summary>
    public sealed class ZegoException : Exception
    {
        public ZegoException(int code, string message = null, string function = null)
            : base(Describe(code, message, function))
        {
            Code = code;
            Function = function;
        }

        /// <summary>The number; compare it with <see cref="ErrorCode"/> values.</summary>
        public int Code { get; private set; }

        /// <summary>The code as an <see cref="Express.ErrorCode"/>, or null when this version does not know it.</summary>
        public ErrorCode? KnownCode
        {
            get { return Enum.IsDefined(typeof(ErrorCode), Code) ? (ErrorCode?)(ErrorCode)Code : null; }
        }

        /// <summary>The C function that returned the code, when there was one.</summary>
        public string Function { get; private set; }

        static string Describe(int code, string message, string function)
        {
            var text = message ?? ZegoExpress.ErrorMessage(code);
            var name = Enum.IsDefined(typeof(ErrorCode), code) ? " " + (ErrorCode)code : "";
            return (function != null ? function + ": " : "") + code + name + ": " + text;
        }

        /// <summary>Throws for a non-zero code.</summary>
        internal static void Check(int code, string function)
        {
            if (code != 0) throw new ZegoException(code, null, function);
        }
    }

    /// <summary>An exception an event handler threw; the SDK drops it after reporting it here.</summary>
    public sealed class CallbackExceptionEventArgs : EventArgs
    {
        internal CallbackExceptionEventArgs(string evt, Exception exception)
        {
            Event = evt;
            Exception = exception;
        }

        /// <summary>The event whose handler threw.</summary>
        public string Event { get; private set; }
        public Exception Exception { get; private set; }
    }

    /// <summary>Process-wide functions: version, error messages, logging.</summary>
    public static partial class ZegoExpress
    {
        static readonly object gate = new object();
        static readonly List<Delegate> forever = new List<Delegate>();

        /// <summary>
        /// Raised when an event handler throws. Without a subscriber the exception is written to stderr. Either way
        /// it never reaches the SDK's thread.
        /// </summary>
        public static event EventHandler<CallbackExceptionEventArgs> CallbackException;

        /// <summary>The SDK version, e.g. "0.1.0".</summary>
        public static unsafe string Version
        {
            get { return Interop.Text(NativeMethods.zego_get_version()); }
        }

        /// <summary>The SDK's message for an error code.</summary>
        public static unsafe string ErrorMessage(int code)
        {
            return Interop.Text(NativeMethods.zego_get_error_message(code));
        }

        /// <summary>Lets log lines at <paramref name="level"/> and more severe through.</summary>
        public static void SetLogLevel(LogLevel level)
        {
            ZegoException.Check(NativeMethods.zego_set_log_level((int)level), "zego_set_log_level");
        }

        /// <summary>Appends log lines to the file at <paramref name="path"/>, or stops when it is null.</summary>
        public static unsafe void SetLogFile(string path)
        {
            using (var keep = new NativeStrings())
                ZegoException.Check(NativeMethods.zego_set_log_file(keep.Add(path)), "zego_set_log_file");
        }

        internal static void ReportCallbackException(string evt, Exception exception)
        {
            try
            {
                var handler = CallbackException;
                if (handler != null)
                    handler(null, new CallbackExceptionEventArgs(evt, exception));
                else
                    Console.Error.WriteLine("zego_express: the " + evt + " handler threw: " + exception);
            }
            catch (Exception)
            {
                // The reporter itself threw: nothing more can be done without risking the SDK's thread.
            }
        }

        /// <summary>Native delegates of process-wide callbacks stay alive for the life of the process.</summary>
        static void KeepForever(Delegate native)
        {
            lock (forever) forever.Add(native);
        }

        static void Subscribe<T>(ref EventHandler<T> field, EventHandler<T> value, Func<bool, int> register) where T : EventArgs
        {
            lock (gate)
            {
                bool first = field == null;
                field = (EventHandler<T>)Delegate.Combine(field, value);
                if (first && field != null)
                {
                    int code = register(true);
                    if (code != 0)
                    {
                        field = null;
                        ZegoException.Check(code, "register");
                    }
                }
            }
        }

        static void Unsubscribe<T>(ref EventHandler<T> field, EventHandler<T> value, Func<bool, int> register) where T : EventArgs
        {
            lock (gate)
            {
                bool had = field != null;
                field = (EventHandler<T>)Delegate.Remove(field, value);
                if (had && field == null) register(false);
            }
        }
    }
}
