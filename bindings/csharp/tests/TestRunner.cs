using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using System.Threading;

namespace Zego.Express.Tests
{
    /// <summary>Marks a test: a public static method without parameters.</summary>
    [AttributeUsage(AttributeTargets.Method)]
    public sealed class TestAttribute : Attribute
    {
    }

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void True(bool condition, string message)
        {
            if (!condition) throw new AssertionException(message);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected " + expected + ", got " + actual);
        }

        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertionException(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }
    }

    /// <summary>Collects values from the callback thread; <see cref="Wait"/> blocks (bounded) until a predicate holds.</summary>
    public sealed class Collector<T>
    {
        readonly List<T> items = new List<T>();

        public void Add(T item)
        {
            lock (items)
            {
                items.Add(item);
                Monitor.PulseAll(items);
            }
        }

        public List<T> Snapshot()
        {
            lock (items) return new List<T>(items);
        }

        public List<T> Wait(Func<List<T>, bool> done, string what, int timeoutMs = 15000)
        {
            var deadline = DateTime.UtcNow.AddMilliseconds(timeoutMs);
            lock (items)
            {
                while (!done(items))
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero)
                        throw new AssertionException("timed out waiting for " + what + "; got [" + string.Join(", ", items) + "]");
                    Monitor.Wait(items, left);
                }
                return new List<T>(items);
            }
        }
    }

    /// <summary>
    /// The server the tests use: $ZEGO_SERVER_URL (tests/bindings_csharp.rs starts one in-process), or a zego-server
    /// binary ($ZEGO_SERVER_BIN) started here on ephemeral loopback ports.
    /// </summary>
    public static class Server
    {
        static string url;
        static Process process;

        public static uint AppId
        {
            get { return uint.Parse(Environment.GetEnvironmentVariable("ZEGO_APP_ID") ?? "1234567890"); }
        }

        public static string AppSign
        {
            get
            {
                return Environment.GetEnvironmentVariable("ZEGO_APP_SIGN")
                    ?? "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
            }
        }

        public static string Url
        {
            get
            {
                if (url != null) return url;
                url = Environment.GetEnvironmentVariable("ZEGO_SERVER_URL");
                if (url != null) return url;
                var binary = Environment.GetEnvironmentVariable("ZEGO_SERVER_BIN");
                if (binary == null) throw new InvalidOperationException("set ZEGO_SERVER_URL or ZEGO_SERVER_BIN");
                var start = new ProcessStartInfo(binary, "--listen 127.0.0.1:0 --media 127.0.0.1:0 --log warn")
                {
                    UseShellExecute = false,
                    RedirectStandardOutput = true,
                };
                process = Process.Start(start);
                var line = process.StandardOutput.ReadLine() ?? "";
                var match = Regex.Match(line, @"ws=(\S+)");
                if (!match.Success) throw new InvalidOperationException("unexpected zego-server output: " + line);
                url = match.Groups[1].Value;
                return url;
            }
        }

        public static void Stop()
        {
            if (process != null && !process.HasExited) process.Kill();
        }

        public static string Unique(string prefix)
        {
            return prefix + "-" + Guid.NewGuid().ToString("N").Substring(0, 10);
        }

        public static Engine NewEngine()
        {
            return new Engine(AppId, Url, AppSign);
        }
    }

    public static class Runner
    {
        const int TestTimeoutMs = 60000;

        public static int Main(string[] args)
        {
            var tests = typeof(Runner).Assembly.GetTypes()
                .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static))
                .Where(m => m.GetCustomAttributes(typeof(TestAttribute), false).Length > 0)
                .Where(m => args.Length == 0 || args.Any(a => m.Name.Contains(a)))
                .OrderBy(m => m.DeclaringType.Name + "." + m.Name)
                .ToList();
            int failed = 0;
            try
            {
                foreach (var test in tests)
                {
                    var name = test.DeclaringType.Name + "." + test.Name;
                    Exception error = null;
                    var watch = Stopwatch.StartNew();
                    var thread = new Thread(() =>
                    {
                        try
                        {
                            test.Invoke(null, null);
                        }
                        catch (TargetInvocationException e)
                        {
                            error = e.InnerException;
                        }
                        catch (Exception e)
                        {
                            error = e;
                        }
                    });
                    thread.IsBackground = true;
                    thread.Start();
                    if (!thread.Join(TestTimeoutMs))
                    {
                        Console.WriteLine("FAILED " + name + ": timed out after " + TestTimeoutMs / 1000 + " s");
                        Console.Out.Flush();
                        Server.Stop();
                        // A hung test cannot be stopped; end the process so the run stays bounded.
                        Environment.Exit(1);
                    }
                    if (error == null)
                    {
                        Console.WriteLine("ok " + name + " (" + watch.ElapsedMilliseconds + " ms)");
                    }
                    else
                    {
                        failed++;
                        Console.WriteLine("FAILED " + name + ": " + error);
                    }
                }
            }
            finally
            {
                Server.Stop();
            }
            Console.WriteLine((tests.Count - failed) + " passed, " + failed + " failed");
            return failed == 0 && tests.Count > 0 ? 0 : 1;
        }
    }
}
