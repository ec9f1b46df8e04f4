using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;

namespace Zego.Express
{
    /// <summary>Conversions between C data and .NET values.</summary>
    internal static unsafe class Interop
    {
        /// <summary>A UTF-8 C string as a string; NULL is "".</summary>
        internal static string Text(byte* p)
        {
            if (p == null) return "";
            int n = 0;
            while (p[n] != 0) n++;
            return Encoding.UTF8.GetString(p, n);
        }

        /// <summary>A copy of <paramref name="count"/> 16-bit samples.</summary>
        internal static short[] Samples(short* p, uint count)
        {
            var samples = new short[p == null ? 0 : count];
            if (samples.Length > 0) Marshal.Copy((IntPtr)p, samples, 0, samples.Length);
            return samples;
        }

        /// <summary>A copy of <paramref name="length"/> bytes.</summary>
        internal static byte[] Bytes(byte* p, uint length)
        {
            var bytes = new byte[p == null ? 0 : length];
            if (bytes.Length > 0) Marshal.Copy((IntPtr)p, bytes, 0, bytes.Length);
            return bytes;
        }
    }

    /// <summary>
    /// NUL-terminated UTF-8 copies of strings passed to C, freed together once the call returned.
    /// </summary>
    internal sealed unsafe class NativeStrings : IDisposable
    {
        readonly List<IntPtr> allocations = new List<IntPtr>();

        /// <summary>A C copy of <paramref name="text"/>; null stays NULL. A NUL inside is refused (C would cut it).</summary>
        internal byte* Add(string text)
        {
            if (text == null) return null;
            if (text.IndexOf('\0') >= 0)
                throw new ZegoException((int)ErrorCode.CommonInvalidParameter, "strings must not contain NUL characters");
            var bytes = Encoding.UTF8.GetBytes(text);
            var memory = Marshal.AllocHGlobal(bytes.Length + 1);
            allocations.Add(memory);
            Marshal.Copy(bytes, 0, memory, bytes.Length);
            ((byte*)memory)[bytes.Length] = 0;
            return (byte*)memory;
        }

        /// <summary>A C array of C strings.</summary>
        internal byte** AddList(string[] texts)
        {
            if (texts == null || texts.Length == 0) return null;
            var memory = Marshal.AllocHGlobal(IntPtr.Size * texts.Length);
            allocations.Add(memory);
            var list = (byte**)memory;
            for (int i = 0; i < texts.Length; i++) list[i] = Add(texts[i]);
            return list;
        }

        public void Dispose()
        {
            foreach (var memory in allocations) Marshal.FreeHGlobal(memory);
            allocations.Clear();
        }
    }

    /// <summary>
    /// The planes of a video frame during a frame event (3 for I420, 2 for NV12, 1 for BGRA32/RGBA32). The memory
    /// belongs to the SDK and is valid only while the event handler runs: <see cref="Copy"/> what you keep. After
    /// the handler returns every member throws <see cref="ObjectDisposedException"/>.
    /// </summary>
    public sealed unsafe class VideoPlanes
    {
        const int MaxPlanes = 4;
        readonly byte** data;
        readonly uint* lengths;
        volatile bool valid = true;

        internal VideoPlanes(byte** data, uint* lengths)
        {
            this.data = data;
            this.lengths = lengths;
            int count = 0;
            if (data != null && lengths != null)
                while (count < MaxPlanes && data[count] != null && lengths[count] > 0) count++;
            Count = count;
        }

        /// <summary>Number of planes.</summary>
        public int Count { get; private set; }

        /// <summary>Bytes in plane <paramref name="index"/>.</summary>
        public int Length(int index)
        {
            Check(index);
            return (int)lengths[index];
        }

        /// <summary>A copy of plane <paramref name="index"/>.</summary>
        public byte[] Copy(int index)
        {
            var copy = new byte[Length(index)];
            Marshal.Copy((IntPtr)data[index], copy, 0, copy.Length);
            return copy;
        }

        /// <summary>Copies plane <paramref name="index"/> into <paramref name="destination"/> at <paramref name="offset"/>.</summary>
        public void CopyTo(int index, byte[] destination, int offset)
        {
            int length = Length(index);
            if (destination == null) throw new ArgumentNullException("destination");
            if (offset < 0 || offset + length > destination.Length) throw new ArgumentOutOfRangeException("offset");
            Marshal.Copy((IntPtr)data[index], destination, offset, length);
        }

        /// <summary>The address of plane <paramref name="index"/>, valid only while the handler runs.</summary>
        public IntPtr Pointer(int index)
        {
            Check(index);
            return (IntPtr)data[index];
        }

        internal void Invalidate()
        {
            valid = false;
        }

        void Check(int index)
        {
            if (!valid) throw new ObjectDisposedException("VideoPlanes", "frame planes are valid only during the event; copy them");
            if (index < 0 || index >= Count) throw new ArgumentOutOfRangeException("index");
        }
    }
}
